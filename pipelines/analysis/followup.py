"""The yearly follow-up's figures, read from the store's public tables.

Every function returns aggregates only (never a pupil-level row) with the number of
pupils each figure rests on and a 95 % interval where it is an estimate. Nothing here is
suppressed: the report registers every figure with `pipelines.analysis.disclosure` (see
`pipelines.analysis.figures`), which hides small and recoverable cells across all tables at once.
Queries live in `analysis/sql/*.sql`.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from pipelines import labels as lb
from pipelines.analysis.disclosure import members
from pipelines.analysis.suppress import fmt_num, fmt_pct
from pipelines.codes import CURRENT, Direction, Programme
from pipelines.config import ABSENCE_THRESHOLDS, DEFAULT_ABSENCE_THRESHOLD, REPORT_SQL_DIR
from pipelines.labels import (
    ALL,
    DIRECTIONS,
    ENROLLED,
    GENDER_ORDER,
    MEASURES,
    OTHERS,
    THIS_FOLLOWUP,
    TOTAL,
    report_title,
)
from pipelines.rules.indicators import skolverket_mean_merit
from pipelines.rules.reference import FOLLOWUP_2015_SHARE_INCREASED, enrolment_targets
from pipelines.store import connect_readonly


def open_store(store: str | Path | None = None) -> duckdb.DuckDBPyConnection:
    """Read-only connection to the store; a rebuild never waits for it. DuckDB's allocator
    hands memory back to the system in the background: the report's pupil-level queries
    would otherwise keep a city's intermediates (GBs) resident while Python works."""
    con = connect_readonly(store)
    con.execute("set allocator_background_threads = true")
    return con


def store_path(con: duckdb.DuckDBPyConnection) -> str:
    """The file of the store `con` reads (another process can open it read-only beside it)."""
    sql = "select path from duckdb_databases() where database_name = current_database()"
    return str(con.execute(sql).fetchall()[0][0])


def frame(con: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None) -> pl.DataFrame:
    """A query's result as a polars frame."""
    return con.sql(sql, params=params).pl()


def report_query(
    con: duckdb.DuckDBPyConnection, name: str, year: int, districts: list[str] | None = None, **names: str
) -> pl.DataFrame:
    """A query of `analysis/sql/` for `year`; a query that takes `$districts` gets the report's districts
    as a list parameter (NULL: every district). `names` are substituted as `{name}` (constants only),
    after `{include:query}` is replaced by that query's text."""
    sql = (REPORT_SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")
    # `{include:other}`: another query of the folder as a subquery (one definition, two users)
    sql = re.sub(
        r"\{include:(\w+)\}",
        lambda m: (REPORT_SQL_DIR / f"{m.group(1)}.sql").read_text(encoding="utf-8").strip().rstrip(";"),
        sql,
    )
    for k, v in names.items():
        sql = sql.replace("{" + k + "}", v)
    params: dict = {"year": year} if "$year" in sql else {}
    if "$districts" in sql:
        params["districts"] = sorted(districts) if districts else None
    return frame(con, sql, params or None)


def wilson(k: pl.Expr | np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    lo, hi = proportion_confint(k, np.where(n > 0, n, 1), alpha=0.05, method="wilson")
    return np.where(n > 0, lo, np.nan), np.where(n > 0, hi, np.nan)


def with_share_ci(df: pl.DataFrame, k: str = "k", n: str = "n") -> pl.DataFrame:
    lo, hi = wilson(df.get_column(k).to_numpy(), df.get_column(n).to_numpy())
    return df.with_columns((pl.col(k) / pl.col(n)).alias("share"), pl.Series("lo", lo), pl.Series("hi", hi))


def mean_ci(values: np.ndarray) -> tuple[float, float, float, int]:
    values = values[~np.isnan(values)]
    n = len(values)
    if n == 0:
        return np.nan, np.nan, np.nan, 0
    mean = float(values.mean())
    if n < 2:
        return mean, np.nan, np.nan, n
    half = float(stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / np.sqrt(n))
    return mean, mean - half, mean + half, n


def _with_all_genders(rows: pl.DataFrame) -> pl.DataFrame:
    """Each row once as `Samtliga` and once under its gender (rows without F/M only in `Samtliga`)."""
    labelled = rows.with_columns(pl.col("gender").replace_strict(lb.PUPIL_GENDER, default=None).alias("gender_label"))
    return pl.concat(
        [
            labelled.with_columns(pl.lit(ALL).alias("gender_label")),
            labelled.filter(pl.col("gender_label").is_not_null()),
        ]
    )


def blank_suppressed(df: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """Null the figures of rows flagged `suppressed` (the evaluation's own row flags; what the
    report hides is decided by `pipelines.analysis.disclosure`)."""
    return df.with_columns(pl.when(pl.col("suppressed")).then(None).otherwise(pl.col(c)).alias(c) for c in columns)


# --- store and data quality ---------------------------------------------------------------
def store_info(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return dict(con.execute("select key, value from meta").fetchall())


def data_quality(con: duckdb.DuckDBPyConnection) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Current file versions per input kind, and quarantined rows per rule (no personal data).

    Every pupil of the programmes has a loaded register row, so the register's loaded rows
    are at least their number: `rows_loaded__members` lists them, for the disclosure control
    (a bound)."""
    files = frame(
        con,
        f"""
        with register as (select 'register' as kind, list(distinct pupil_key) as members from programme_starts)
        select kind, count(*) as files, count(*) filter (where status = 'rejected') as files_rejected,
               sum(rows_read) as rows_read, sum(rows_loaded) as rows_loaded,
               sum(rows_quarantined) as rows_quarantined, sum(rows_invalid) as rows_invalid,
               sum(rows_held) as rows_held, sum(rows_unused) as rows_unused,
               -- fewer rows than pupils cannot happen; were it so, the rows would bound nothing
               case when len(any_value(register.members)) <= sum(rows_loaded)
                    then any_value(register.members) end as rows_loaded__members
        from load_log left join register using (kind)
        where status in {CURRENT} group by kind order by kind
    """,
    )
    rules = frame(
        con,
        f"""
        select l.kind, q.rule, count(*) as n_rows, any_value(q.message) as message
        from quarantine as q inner join load_log as l using (file_id)
        where l.status in {CURRENT} group by all order by n_rows desc, kind, rule
    """,
    )
    return files, rules


def coverage(con: duckdb.DuckDBPyConnection, year: int, districts: list[str] | None = None) -> pl.DataFrame:
    """Share of programme pupils (enrolled up to the follow-up year) found in each data source."""
    return with_share_ci(report_query(con, "coverage", year, districts).with_columns(lb.label("source", lb.SOURCE)))


# --- enrolment ----------------------------------------------------------------------------
def enrolled_by_district(con, year: int, districts: list[str] | None = None) -> pl.DataFrame:
    """PPSS pupils first enrolled per district and year, every district x year (zeros
    included), and a `Totalt` row per year over the districts shown. Each pupil counts once,
    in the year and district of the first PPSS enrolment (`programme_starts`)."""
    df = report_query(con, "enrolled_by_district", year, districts)
    # an empty store gives untyped columns; the grid below joins on them
    df = df.with_columns(pl.col("district").cast(pl.String), pl.col("year").cast(pl.Int64))
    years = sorted(df.get_column("year").unique().to_list())
    names = sorted(df.get_column("district").drop_nulls().unique().to_list())
    grid = pl.DataFrame({"district": names}, schema={"district": pl.String}).join(
        pl.DataFrame({"year": years}, schema={"year": pl.Int64}), how="cross"
    )
    df = df.with_columns(pl.col("year").cast(pl.Int64))
    cols = ["district", "year", "n_pupils", members("n_pupils")]
    cells = grid.join(df, on=["district", "year"], how="left").with_columns(
        pl.col("n_pupils").fill_null(0), pl.col(members("n_pupils")).fill_null([])
    )
    totals = df.group_by("year").agg(
        pl.col("n_pupils").sum(), pl.col(members("n_pupils")).list.explode(keep_nulls=False, empty_as_null=False)
    )
    totals = totals.with_columns(pl.lit(TOTAL).alias("district"))
    return pl.concat([cells.select(cols), totals.select(cols)]).sort(pl.col("district") == TOTAL, "district", "year")


def enrolled_vs_targets(con, districts: list[str] | None = None) -> pl.DataFrame:
    """PPSS pupils first enrolled in each period the city's documents give a number for (with
    `districts`, those first enrolled in these districts; the documented numbers are the city's)."""
    targets = enrolment_targets()
    firsts = frame(
        con,
        "select pupil_key, start_date from programme_starts where programme = $p "
        "and ($districts::varchar[] is null or list_contains($districts::varchar[], district))",
        {"p": Programme.PPSS, "districts": sorted(districts) if districts else None},
    )
    periods = [
        firsts.filter(pl.col("start_date").is_between(r["first_day"], r["last_day"]))["pupil_key"].to_list()
        for r in targets.iter_rows(named=True)
    ]
    return targets.with_columns(
        pl.Series("registered", [len(p) for p in periods], dtype=pl.Int64),
        pl.Series(members("registered"), periods, dtype=pl.List(pl.String)),
    )


def programmes_apart(con, year: int, districts: list[str] | None = None) -> pl.DataFrame:
    """Pupils first enrolled up to the end of `year` in each programme other than PPSS that
    the register holds (SkolFam), and how many of them were also in PPSS: the report counts
    PPSS only and shows these apart. Always one row per other programme of the contract."""
    df = report_query(con, "programmes_apart", year, districts)
    known = pl.DataFrame({"programme": [p.value for p in Programme if p != Programme.PPSS]})
    return (
        known.join(df.with_columns(pl.col("programme").cast(pl.String)), on="programme", how="left")
        .with_columns(
            pl.col("n_pupils", "n_also_ppss").fill_null(0).cast(pl.Int64),
            pl.col(members("n_pupils"), members("n_also_ppss")).fill_null([]),
            lb.label("programme", lb.PROGRAMME),
        )
        .select("programme", "n_pupils", "n_also_ppss", members("n_pupils"), members("n_also_ppss"))
    )


def vocabulary_by_district(con, year: int, column: str, districts: list[str] | None = None) -> pl.DataFrame:
    """Share of each district's enrolled pupils with each selection reason or intervention."""
    if column not in ("selection_reasons", "interventions"):
        raise ValueError(column)
    df = report_query(con, "vocabulary_by_district", year, districts, column=column)
    return df.with_columns((pl.col("n_pupils") / pl.col("n_district")).alias("share"))


# --- attendance ---------------------------------------------------------------------------
def attendance_event_time(con, year: int, districts: list[str] | None = None) -> pl.DataFrame:
    """Mean monthly absence rate by months since enrolment, enrolled pupils and comparison."""
    rows = report_query(con, "attendance_event_time", year, districts)
    out = []
    for (month,), part in rows.group_by("event_month"):
        for group, col in ((ENROLLED, "absence_rate"), (OTHERS, "reference_rate")):
            values = part.get_column(col).cast(pl.Float64).fill_nan(None)
            mean, lo, hi, n = mean_ci(values.fill_null(np.nan).to_numpy())
            # the comparison's mean per month is over the enrolled pupils' schools: it counts them
            pupils = part.filter(values.is_not_null())["pupil_key"].to_list()
            out.append(
                {
                    "event_month": month,
                    "pupil_group": group,
                    "mean": mean,
                    "lo": lo,
                    "hi": hi,
                    "n": n,
                    members("n"): pupils,
                }
            )
    df = pl.DataFrame(
        out,
        schema={
            "event_month": pl.Int64,
            "pupil_group": pl.String,
            "mean": pl.Float64,
            "lo": pl.Float64,
            "hi": pl.Float64,
            "n": pl.Int64,
            members("n"): pl.List(pl.String),
        },
    ).sort("pupil_group", "event_month")
    return df


def absence_levels(threshold: float) -> tuple[float, ...]:
    """The thresholds the report computes: the report's own and the others of the domain rules."""
    if not 0 < threshold < 1:
        raise ValueError(f"absence_threshold must be a share between 0 and 1, not {threshold}")
    return tuple(sorted({*ABSENCE_THRESHOLDS, round(threshold, 4)}))


def absence_thresholds(
    con, year: int, threshold: float = DEFAULT_ABSENCE_THRESHOLD, districts: list[str] | None = None
) -> pl.DataFrame:
    """Share of pupil-terms in åk 7-9 with absence at or above each threshold of
    `absence_levels(threshold)`, PPSS pupils and the others of the same schools."""
    thresholds = absence_levels(threshold)
    rows = report_query(con, "absence_thresholds", year, districts).with_columns(
        lb.label("pupil_group", lb.PUPIL_GROUP)
    )
    parts = [
        rows.group_by("term_label", "term_index", "pupil_group").agg(
            pl.lit(t).alias("threshold"),
            pl.len().alias("n"),
            pl.col("pupil_key").alias(members("n")),
            (pl.col("absence_rate") >= t).sum().alias("k"),
            pl.col("pupil_key").filter(pl.col("absence_rate") >= t).alias(members("k")),
        )
        for t in thresholds
    ]
    df = pl.concat(parts).sort("term_index", "pupil_group", "threshold") if parts else rows
    return with_share_ci(df)


# --- grades -------------------------------------------------------------------------------
def pass_change(con, year: int, districts: list[str] | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Term 1 -> term 2 change in share of passed subjects: per pupil and at group level."""
    rows = report_query(con, "pass_change", year, districts)
    rows = rows.with_columns(
        pl.when(pl.col("share_term_2") > pl.col("share_term_1") + 1e-9)
        .then(pl.lit(Direction.INCREASED.value))
        .when(pl.col("share_term_2") < pl.col("share_term_1") - 1e-9)
        .then(pl.lit(Direction.DECREASED.value))
        .otherwise(pl.lit(Direction.UNCHANGED.value))
        .alias("direction"),
    ).with_columns(lb.label("direction", lb.DIRECTION))
    both = _with_all_genders(rows)
    # every direction for every group, zeros included: the three counts add up to the group
    totals = both.group_by("gender_label").agg(pl.len().alias("n"), pl.col("pupil_key").alias(members("n")))
    indiv = (
        totals.join(pl.DataFrame({"direction": list(DIRECTIONS)}), how="cross")
        .join(
            both.group_by("gender_label", "direction").agg(
                pl.len().alias("k"), pl.col("pupil_key").alias(members("k"))
            ),
            on=["gender_label", "direction"],
            how="left",
        )
        .with_columns(pl.col("k").fill_null(0).cast(pl.Int64), pl.col(members("k")).fill_null([]))
    )
    indiv = with_share_ci(indiv)
    group_rows = []
    for (label,), part in both.group_by("gender_label"):
        t1, t2 = part.get_column("share_term_1").to_numpy(), part.get_column("share_term_2").to_numpy()
        diff, lo, hi, n = mean_ci(t2 - t1)
        group_rows.append(
            {
                "gender_label": label,
                "n": n,
                members("n"): part["pupil_key"].to_list(),
                "mean_term_1": float(t1.mean()),
                "mean_term_2": float(t2.mean()),
                "change": diff,
                "lo": lo,
                "hi": hi,
            }
        )
    group = pl.DataFrame(
        group_rows,
        schema={
            "gender_label": pl.String,
            "n": pl.Int64,
            members("n"): pl.List(pl.String),
            "mean_term_1": pl.Float64,
            "mean_term_2": pl.Float64,
            "change": pl.Float64,
            "lo": pl.Float64,
            "hi": pl.Float64,
        },
    )
    return (
        indiv.sort(lb.order("gender_label", GENDER_ORDER), "direction"),
        group.sort(lb.order("gender_label", GENDER_ORDER)),
    )


def grade9_rows(con, year: int, districts: list[str] | None = None) -> pl.DataFrame:
    """Årskurs 9 pupils of PPSS schools in the spring of `year`, with their labelled group."""
    return report_query(con, "grade9_outcomes", year, districts).with_columns(lb.label("pupil_group", lb.PUPIL_GROUP))


def grade9_eligibility(con, year: int, districts: list[str] | None = None) -> pl.DataFrame:
    """Eligibility at the end of årskurs 9: enrolled vs other pupils of the same schools, by gender."""
    both = _with_all_genders(grade9_rows(con, year, districts))
    parts = [
        both.group_by("pupil_group", "gender_label").agg(
            pl.lit(label).alias("measure"),
            pl.len().alias("n"),
            pl.col("pupil_key").alias(members("n")),
            pl.col(col).fill_null(False).sum().alias("k"),
            pl.col("pupil_key").filter(pl.col(col).fill_null(False)).alias(members("k")),
        )
        for col, label in MEASURES.items()
    ]
    return with_share_ci(pl.concat(parts)).sort("measure", "pupil_group", "gender_label")


# --- sentences written from the numbers ---------------------------------------------------
def describe_interval(change: float | None, lo: float | None, hi: float | None, unit: str = "procentenheter") -> str:
    """A Swedish sentence about a change and its 95 % interval; says so when it crosses zero."""
    if change is None or lo is None or hi is None or np.isnan(lo):
        return "För få elever för att beräkna en förändring."
    pts = lambda v: fmt_num(100 * v, 1)  # noqa: E731
    text = f"{pts(change)} {unit} (95 % konfidensintervall {pts(lo)} till {pts(hi)})"
    if lo <= 0 <= hi:
        return text + ": intervallet omfattar noll, så data visar ingen säker förändring."
    return text + (
        ": en ökning som inte förklaras av slumpen." if lo > 0 else ": en minskning som inte förklaras av slumpen."
    )


def describe_share(share: float | None, lo: float | None, hi: float | None, n: int | None) -> str:
    if share is None:
        return ".. (döljs av röjandekontrollen)"
    return f"{fmt_pct(share)} (95 % KI {fmt_pct(lo)}–{fmt_pct(hi)}, {n} elever)"


def text_attendance(event: pl.DataFrame) -> str:
    """Before/after sentence for the event-time chart, written from its figures."""
    e = event.filter((pl.col("pupil_group") == ENROLLED) & pl.col("mean").is_not_null())
    before = e.filter(pl.col("event_month").is_between(-6, -1))
    after = e.filter(pl.col("event_month").is_between(3, 12))
    if before.is_empty() or after.is_empty():
        return "Det finns för få elever med närvarouppgifter före och efter inskrivning för att jämföra."
    b, a = before.get_column("mean").mean(), after.get_column("mean").mean()
    ref = (
        event.filter((pl.col("pupil_group") == OTHERS) & pl.col("event_month").is_between(3, 12))
        .get_column("mean")
        .mean()
    )
    direction = "lägre" if a < b else "högre"
    text = (
        f"Under de sex månaderna före inskrivning var de inskrivna elevernas frånvaro i genomsnitt "
        f"{fmt_pct(b, 1)}; tre till tolv månader efter inskrivning var den {fmt_pct(a, 1)}, alltså {direction}. "
    )
    if ref is not None:
        text += f"Ej inskrivna elever i samma skolor hade {fmt_pct(ref, 1)} frånvaro under samma kalendermånader. "
    overlap = e.filter(pl.col("event_month").is_between(3, 12)).get_column("hi").max() >= before.get_column("lo").min()
    text += (
        "Konfidensintervallen före och efter överlappar, så skillnaden kan vara slump. "
        if overlap
        else "Konfidensintervallen före och efter överlappar inte. "
    )
    return text + (
        "Jämförelsen visar en förändring över tid, inte att programmet orsakat den: "
        "elever skrivs in när frånvaron är som högst och kan förbättras ändå (återgång mot medelvärdet)."
    )


def text_pass_change(indiv: pl.DataFrame, group: pl.DataFrame) -> str:
    everyone = indiv.filter(pl.col("gender_label") == ALL)
    up = everyone.filter(pl.col("direction") == lb.DIRECTION[Direction.INCREASED])
    g = group.filter(pl.col("gender_label") == ALL)
    if up.is_empty() or g.is_empty():
        return "För få elever har betyg både terminen de skrevs in och terminen efter för att jämföra."
    row = g.row(0, named=True)
    if up["share"][0] is None or row["change"] is None:  # hidden, while a group's figure may still show
        shown = indiv.filter(pl.col("share").is_not_null()).height + group.filter(pl.col("change").is_not_null()).height
        return (
            "Förändringen för samtliga inskrivna döljs av röjandekontrollen (för få elever, eller för att den "
            "skulle ge bort en annan dold uppgift)."
            + (" Det som kan visas står i diagrammen ovan och i tabellerna som kan laddas ned." if shown else "")
        )
    return (
        "Av de inskrivna eleverna med betyg båda terminerna ökade "
        f"{describe_share(up['share'][0], up['lo'][0], up['hi'][0], up['n'][0])} "
        f"sin andel godkända ämnen från termin 1 till termin 2. På gruppnivå ändrades andelen godkända ämnen med "
        f"{describe_interval(row['change'], row['lo'], row['hi'])} Stadens uppföljning 2015 fann att "
        f"{fmt_pct(FOLLOWUP_2015_SHARE_INCREASED)} av eleverna "
        "ökade på individnivå men att förbättringen krympte på gruppnivå: individuella ökningar och minskningar "
        "tar delvis ut varandra, och elever med låg andel godkända har mer utrymme att öka."
    )


def title_block(
    year: int,
    info: dict[str, str],
    min_cell: int,
    districts: list[str] | None = None,
    absence_terms: str | None = None,
) -> str:
    """The report's opening: title (naming a subset of districts), what the year covers."""
    demo = (
        "\n\n> **Demodata.** Rapporten bygger på påhittade elever från `ppss demo-data`, "
        "pseudonymiserade med den inbyggda demonyckeln. Siffrorna säger ingenting om verkliga elever."
        if info.get("demo_key") == "true"
        else ""
    )
    return (
        f"# {report_title(year, districts)}\n\n"
        "PPSS (Pilotprojekt samverkan skola och socialtjänst) startade 2013: skolan och stadsdelens "
        "socialtjänst arbetar tillsammans så att elever i riskzonen – med hög frånvaro eller låga "
        "studieresultat – går i skolan och lämnar årskurs 9 behöriga till gymnasiet. Rapporten följer upp "
        "programmet med utbildningsförvaltningens betygs- och närvarodata, som styrgruppen beslutade.\n\n"
        + subset_note(districts)
        + f"Uppföljningsåret är {year}: inskrivningar till och med {year}, frånvaro under "
        f"{absence_terms or f'vårterminen och höstterminen {year}'}, och behörighet efter vårterminen {year}. "
        "Siffror som vilar på färre än "
        f"{min_cell} elever visas som `..`, liksom siffror som annars skulle gå att räkna ut ur andra, och `.` "
        "betyder att uppgiften saknas (se Metodbilagan, Röjandekontroll). Rapporten innehåller "
        "inga uppgifter om enskilda elever." + demo
    )


def subset_note(districts: list[str] | None) -> str:
    if not districts:
        return ""
    return (
        f"**Rapporten gäller bara {'stadsdelen' if len(districts) == 1 else 'stadsdelarna'} "
        f"{', '.join(sorted(districts))}.** Alla avsnitt gäller bara de elever som skrevs in i PPSS första gången "
        f"i {'stadsdelen' if len(districts) == 1 else 'stadsdelarna'}. Jämförelseeleverna i avsnitt 4–6 är övriga "
        "elever, aldrig inskrivna i något program, i de skolor där stadsdelens elever skrevs in; i effektjämförelsen "
        "(avsnitt 7–8) jämförs eleverna med elever i hela staden som ännu inte hade skrivits in, som i hela stadens "
        "rapport. Inskrivningsmålen gäller hela staden. Siffror som döljs i hela stadens rapport döljs också "
        "här.\n\n"
    )


NEAREST_PUBLISHED = 1  # years between the report's spring and published figures shown beside it


def context_comparison(con, year: int, districts: list[str] | None = None) -> pl.DataFrame:
    """Årskurs 9 in the spring of `year`: the programme's groups beside Stockholm and the country.

    Our meritvärde is averaged as Skolverket does, over pupils with at least one passed grade.
    Published figures come from `published_figures` (sourced); the nearest year is shown
    when the follow-up year itself is not published, and the year is always named.
    """
    rows = grade9_rows(con, year, districts)
    ours = []
    for label in (ENROLLED, OTHERS):
        part = rows.filter(pl.col("pupil_group") == label)
        pairs = list(zip(part["merit_value_17"].to_list(), part["n_passed"].to_list(), strict=True))
        ours.append(
            {
                "label": label,
                "spring_year": year,
                "n": part.height,
                members("n"): part["pupil_key"].to_list(),
                "k_vocational": int(part["eligible_vocational"].fill_null(False).sum()),
                members("k_vocational"): part.filter(pl.col("eligible_vocational").fill_null(False))[
                    "pupil_key"
                ].to_list(),
                "k_all_passed": int((part["n_passed"] == part["n_graded"]).sum()),
                members("k_all_passed"): part.filter(pl.col("n_passed") == pl.col("n_graded"))["pupil_key"].to_list(),
                "share_eligible_vocational": part["eligible_vocational"].fill_null(False).mean()
                if part.height
                else None,
                "share_all_subjects_passed": (part["n_passed"] == part["n_graded"]).mean() if part.height else None,
                "mean_merit_value_17": skolverket_mean_merit(pairs),
                "source": THIS_FOLLOWUP,
            }
        )
    published = frame(
        con,
        """
        select area, spring_year, measure, value, any_value(source) over (partition by area, spring_year) as source
        from published_figures where pupil_group = 'Samtliga' and huvudman = 'samtliga'
    """,
    )
    for area in ("Stockholm", "Riket"):
        part = published.filter(pl.col("area") == area)
        if part.is_empty():
            continue
        # the nearest spring within two years: a later cohort is no context for an earlier one
        years = [y for y in part["spring_year"].unique().to_list() if abs(y - year) <= NEAREST_PUBLISHED]
        if not years:
            continue
        nearest = min(years, key=lambda y: (abs(y - year), -y))
        p = {r["measure"]: r["value"] for r in part.filter(pl.col("spring_year") == nearest).iter_rows(named=True)}
        ours.append(
            {
                "label": f"{area}, våren {nearest}",
                "spring_year": nearest,
                "n": int(p["n_pupils"]) if "n_pupils" in p else None,
                "share_eligible_vocational": p.get("share_eligible_vocational", np.nan) / 100,
                "share_all_subjects_passed": p.get("share_all_subjects_passed", np.nan) / 100,
                "mean_merit_value_17": p.get("mean_merit_value_17"),
                "source": part.filter(pl.col("spring_year") == nearest)["source"][0],
            }
        )
    df = pl.DataFrame(
        ours,
        schema={
            "label": pl.String,
            "spring_year": pl.Int64,
            "n": pl.Int64,
            members("n"): pl.List(pl.String),
            "k_vocational": pl.Int64,
            members("k_vocational"): pl.List(pl.String),
            "k_all_passed": pl.Int64,
            members("k_all_passed"): pl.List(pl.String),
            "share_eligible_vocational": pl.Float64,
            "share_all_subjects_passed": pl.Float64,
            "mean_merit_value_17": pl.Float64,
            "source": pl.String,
        },
    )
    return df.with_columns(pl.col(c).fill_nan(None) for c in ("share_eligible_vocational", "share_all_subjects_passed"))
