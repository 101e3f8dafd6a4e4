"""A cross-check of the attendance estimate with Callaway & Sant'Anna (2021), through `csdid`.

The report's design weights comparison pupils on the monthly path before enrolment. The
cross-check is the standard staggered difference-in-differences instead: group-time effects
on term absence with not-yet-enrolled pupils as controls, the doubly robust estimator and a
bootstrap clustered by school, aggregated to one average (csdid's "simple" aggregation).
It assumes unconditional parallel trends, which selection at an absence peak breaks: its
pre-enrolment event-time effects show the peak, and the methods appendix says so.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import warnings
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import stats

from pipelines.analysis.followup import open_store, report_query, store_info, store_path
from pipelines.analysis.suppress import fmt_num

MIN_GROUP = 2  # csdid needs at least this many pupils in an enrolment term


class StoreChanged(Exception):
    """The store file was replaced (a rebuild) after the report opened it."""


class Worker:
    """A process of its own for the cross-check. Spawned when the report starts, it imports
    csdid (2-3 s) while the report computes its first sections; `run` hands it the
    cross-check once the evaluation sample is built, so that the cross-check's memory does not
    add to the sample's peak (a city: under 3 GB in all). It then runs on one core beside the
    report's other evaluation figures; in a thread it held the GIL for most of its 10 s on a
    city. Spawned, not forked: a fork of a process with DuckDB's threads running is unsafe.
    The process ignores the kernel's interrupts (sent to its whole process group) and ends
    when the kernel ends, however it ends."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = _pool()
        self._pool.submit(_warm_up)

    def run(self, con, year: int, districts: list[str] | None = None) -> Pending:
        """The cross-check on the store `con` reads, in the process; a second run (a cell run
        again) starts a new one."""
        args = (store_path(con), store_info(con), year, districts)
        pool, self._pool = self._pool or _pool(), None
        try:
            future = pool.submit(_in_child, *args)
        except BrokenProcessPool:  # the process died while warming up
            pool = _pool()
            future = pool.submit(_in_child, *args)
        pool.shutdown(wait=False)  # the process ends with its task
        return Pending(future, con, year, districts)


@dataclass
class Pending:
    future: Future
    con: object
    year: int
    districts: list[str] | None
    computed_here: bool = False

    def result(self) -> dict:
        """The process's result, or the cross-check computed here on the report's own
        connection if the store was rebuilt since the report opened it (the process would read
        the new file, the report the old) or the process died."""
        try:
            return self.future.result()
        except (StoreChanged, BrokenProcessPool):
            self.computed_here = True
            cursor = self.con.cursor()
            try:
                return callaway_santanna(cursor, self.year, self.districts)
            finally:
                cursor.close()


def _pool() -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=_child_init)


def _child_init() -> None:
    # The kernel is interrupted with SIGINT to its process group; that is the report's to
    # handle (a traceback here would land in the notebook, whose stderr this process shares).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()

    def end_with_parent() -> None:  # a killed kernel must not leave this process behind
        if parent is not None:
            multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=end_with_parent, daemon=True).start()


def _warm_up() -> None:
    import csdid.att_gt  # noqa: F401
    import threadpoolctl  # noqa: F401


def _in_child(store: str, version: dict[str, str], year: int, districts: list[str] | None) -> dict:
    """One core: numpy's BLAS threads would spin against the report's own work on a
    two-core machine (csdid then used 20 CPU s for 10 s, instead of 12 for 12)."""
    from threadpoolctl import threadpool_limits

    con = open_store(store)
    con.execute("set threads = 1")
    try:
        if store_info(con) != version:  # the meta rows a build and an ingest each write
            raise StoreChanged(store)
        with threadpool_limits(1):
            return callaway_santanna(con, year, districts)
    finally:
        con.close()


def callaway_santanna(con, year: int, districts: list[str] | None = None, seed: int = 2016) -> dict:
    """Overall ATT on term absence (fractions), its 95 % interval, and the event-time effect
    in the term before enrolment (the pre-trend a peak leaves); NaN where it cannot run.
    With `districts`, the enrolled are those first enrolled there (pupils first enrolled
    elsewhere are left out)."""
    from csdid.att_gt import ATTgt  # heavy import, only when the cross-check runs

    panel = report_query(con, "crosscheck_panel", year, districts)
    sizes = panel.filter(pl.col("first_term") > 0).group_by("first_term").agg(pl.col("pupil_key").n_unique())
    small = sizes.filter(pl.col("pupil_key") < MIN_GROUP)["first_term"]
    panel = panel.filter(~pl.col("first_term").is_in(small.implode()))
    # n_enrolled__members: the enrolled pupils it rests on (for the disclosure layer, never shown)
    empty = {
        "att": np.nan,
        "lo": np.nan,
        "hi": np.nan,
        "pre_1": np.nan,
        "pre_lo": np.nan,
        "n_enrolled": 0,
        "n_enrolled__members": [],
    }
    if panel.filter(pl.col("first_term") > 0).is_empty() or panel.filter(pl.col("first_term") == 0).is_empty():
        return empty
    base = int(panel["term_index"].min()) - 1
    data = panel.select(
        pl.col("pupil_key").rank("dense").cast(pl.Int64).alias("id"),
        (pl.col("term_index") - base).alias("t"),
        pl.when(pl.col("first_term") > 0).then(pl.col("first_term") - base).otherwise(0).alias("g"),
        "absence_rate",
        pl.col("school").rank("dense").cast(pl.Int64).alias("cluster"),
    ).to_pandas()
    np.random.seed(seed)  # csdid's multiplier bootstrap draws from numpy's global state
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            fit = ATTgt(
                yname="absence_rate",
                tname="t",
                idname="id",
                gname="g",
                data=data,
                control_group=["notyettreated"],
                panel=True,
                allow_unbalanced_panel=True,
                clustervar="cluster",
                biters=999,
            ).fit(est_method="dr")
            fit.aggte(typec="simple", na_rm=True)
            att, se = float(fit.atte["overall_att"]), float(np.ravel(fit.atte["overall_se"])[0])
            fit.aggte(typec="dynamic", na_rm=True)
            events = dict(zip(fit.atte["egt"], fit.atte["att_egt"], strict=True))
            event_se = dict(zip(fit.atte["egt"], np.ravel(fit.atte["se_egt"]), strict=True))
        except (ValueError, np.linalg.LinAlgError, ZeroDivisionError):  # too few pupils for any group-time cell
            return empty
    z = float(stats.norm.ppf(0.975))
    return {
        "att": att,
        "lo": att - z * se,
        "hi": att + z * se,
        "pre_1": float(events.get(-1, np.nan)),
        # the term before enrolment's lower limit: whether pupils were enrolled at a high
        "pre_lo": float(events.get(-1, np.nan)) - z * float(event_se.get(-1, np.nan)),
        "n_enrolled": int(data.loc[data["g"] > 0, "id"].nunique()),
        "n_enrolled__members": panel.filter(pl.col("first_term") > 0)["pupil_key"].unique().sort().to_list(),
    }


def text_crosscheck(row: dict, headline: dict) -> str:
    """The methods appendix's paragraph on the cross-check, from protected numbers."""
    head = "**Kontroll med Callaway och Sant'Anna.**"
    if row.get("att") is None or row.get("n_enrolled") is None:
        return f"{head} Kontrollskattningen döljs av röjandekontrollen."

    def pp(v: float) -> str:
        return fmt_num(100 * v, 1)

    text = (
        f"{head} Samma fråga skattad med den vanliga metoden för inskrivning vid olika tidpunkter "
        "(Callaway och Sant'Anna 2021, paketet `csdid`: effekter per inskrivningstermin och termin, elever som "
        "ännu inte skrivits in som kontroller, dubbelt robust skattning, bootstrap klustrad på skola) ger "
        f"{pp(row['att'])} procentenheter (95 % KI {pp(row['lo'])} till {pp(row['hi'])}) i frånvaro per termin. "
    )
    if headline.get("difference") is not None:
        text += f"Rapportens skattning är {pp(headline['difference'])} procentenheter. "
    text += (
        "Metoderna mäter inte exakt samma sak: kontrollen räknar hela terminer, också inskrivningsterminen och "
        "de första månaderna efter, medan rapporten mäter månad 3–12. Kontrollen förutsätter dessutom att de "
        "inskrivnas frånvaro annars hade utvecklats som andras. "
    )
    # what these data showed, not a story written in advance (issue 21)
    pre_1 = row.get("pre_1")
    if pre_1 is not None and np.isfinite(pre_1):
        if pre_1 > 0 and row.get("pre_lo") is not None and row["pre_lo"] > 0:
            text += (
                f"Terminen före inskrivningen låg de inskrivnas frånvaro {pp(pre_1)} procentenheter över den "
                "förväntade, så de skrevs in när frånvaron var hög; sådan frånvaro sjunker ofta efteråt även "
                "utan insats, och det räknar kontrollen som effekt. Rapporten jämför därför med elever som "
                "hade samma förlopp månad för månad före inskrivningen. "
            )
        else:
            text += (
                f"Terminen före inskrivningen skilde sig de inskrivnas frånvaro från den förväntade med {pp(pre_1)} "
                "procentenheter, så i dessa data syns inget tydligt urval vid en topp. "
            )
    p_trend = headline.get("pretrend_p")
    if p_trend is not None and np.isfinite(p_trend):
        if p_trend < 0.05:
            text += (
                f"Rapportens test av tiden före inskrivningen visar att grupperna redan då utvecklades olika (p = "
                f"{fmt_num(p_trend, 2)}); ingen av metoderna kan då skilja programmet från den utvecklingen."
            )
        else:
            text += (
                f"Rapportens test av tiden före inskrivningen visar ingen skillnad mellan grupperna (p = "
                f"{fmt_num(p_trend, 2)}). Hur metoderna klarar världar med och utan effekt, och med andra sätt att "
                "välja elever, visas i Metodbilagan (Prövat på simulerade data)."
            )
    return text
