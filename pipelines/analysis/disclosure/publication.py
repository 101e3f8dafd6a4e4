"""A publication: what a report or a researcher registers, its protection, and the protected
frames it publishes (pipelines.analysis.disclosure)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import polars as pl

from pipelines.analysis.disclosure.cells import (
    BOUND,
    HIDDEN_SUFFIX,
    SAME_VALUE_RTOL,
    Cell,
    DisclosureError,
    Key,
    KeyFn,
    Table,
    _families,
    _nan,
    describe_key,
    family_of,
    members,
    set_id,
)
from pipelines.analysis.disclosure.system import _System
from pipelines.analysis.ledger import Ledger, Prior
from pipelines.analysis.suppress import check_min_cell


class Publication:
    """A publication's figures, protected together with every earlier one of the store."""

    def __init__(self, min_cell: int, ledger: Ledger | None = None, what: str = "publikation", **meta: Any) -> None:
        self.min_cell = check_min_cell(min_cell)
        self.ledger = ledger
        self.meta = {"what": what, "min_cell": self.min_cell, **meta}
        self._salt = ledger.salt if ledger is not None else b"ppss-no-ledger"
        self._tokens = pl.DataFrame(schema={"key": pl.String, "token": pl.UInt64})
        self.cells: dict[str, Cell] = {}
        self.labels: dict[Key, str] = {}  # label -> cell id
        self.tables: dict[str, Table] = {}

    # --- registration ---------------------------------------------------------------------
    def tokens(self, keys: Sequence[str]) -> np.ndarray:
        """Pupil keys as the ledger's tokens (a keyed hash), sorted and unique."""
        if not len(keys):
            return np.empty(0, dtype=np.uint64)
        wanted = pl.DataFrame({"key": pl.Series(keys, dtype=pl.String)}).unique()
        return np.sort(self._map(wanted)["token"].to_numpy())

    def _map(self, keys: pl.DataFrame) -> pl.DataFrame:
        """`keys` (a column `key`) joined with their tokens; each key is hashed once per
        publication (BLAKE2b with the ledger's salt), a whole column at a time."""
        new = keys.select("key").unique().join(self._tokens, on="key", how="anti")["key"].to_list()
        if new:
            salt = self._salt[:64]
            hashed = [
                int.from_bytes(hashlib.blake2b(k.encode("utf-8"), key=salt, digest_size=8).digest(), "little")
                for k in new
            ]
            added = pl.DataFrame({"key": new, "token": pl.Series(hashed, dtype=pl.UInt64)})
            self._tokens = pl.concat([self._tokens, added])
        return keys.join(self._tokens, on="key")

    def _row_tokens(self, frame: pl.DataFrame, col: str) -> list[np.ndarray]:
        """Each row's pupils of a count column as sorted unique tokens (one join per column)."""
        pupils = (
            frame.select(
                pl.int_range(pl.len(), dtype=pl.UInt32).alias("_row"),
                pl.col(members(col)).cast(pl.List(pl.String)).alias("key"),  # an all-empty column has no type
            )
            .explode("key")
            .drop_nulls("key")
        )
        grouped = self._map(pupils).group_by("_row").agg(pl.col("token").unique().sort())
        out = [np.empty(0, dtype=np.uint64)] * frame.height
        for r, toks in zip(grouped["_row"].to_list(), grouped["token"].to_list(), strict=True):
            out[r] = np.asarray(toks, dtype=np.uint64)
        return out

    def count(
        self, label: Key, pupils: Sequence[str] = (), value: int | None = None, tokens: np.ndarray | None = None
    ) -> str:
        """Register a count of `pupils` (pupil keys, or their `tokens`); returns the cell's identity."""
        toks = tokens if tokens is not None else self.tokens(list(pupils))
        if value is not None and int(value) != len(toks):
            raise ValueError(f"{describe_key(label)} shows {value} but counts {len(toks)} distinct pupils")
        cid = set_id(toks)
        known = self.labels.get(label)
        if known is not None and known != cid:
            raise ValueError(
                f"{describe_key(label)} names two different groups of pupils: two tables call different "
                "populations by the same name"
            )
        self.labels[label] = cid
        if cid not in self.cells:
            self.cells[cid] = Cell(cid, describe_key(label), len(toks), toks, current=True)
        self.cells[cid].families |= _families(label)
        return cid

    def bound(self, label: Key, value: int, pupils: Sequence[str] = (), tokens: np.ndarray | None = None) -> str:
        """Register a published number that is at least the number of `pupils`, each of whom it
        counts at least once (rows of a file that holds a row for every one of them): a reader
        knows that every count of those pupils is at most `value`. Returns the cell's identity."""
        toks = tokens if tokens is not None else self.tokens(list(pupils))
        if int(value) < len(toks):
            raise ValueError(f"{describe_key(label)} shows {value} but bounds {len(toks)} distinct pupils")
        cid = f"{BOUND}{set_id(toks)}:{int(value)}"
        self.labels[label] = cid
        # Hiding it costs little: a row count of a file says nothing about the programme.
        self.cells.setdefault(
            cid, Cell(cid, describe_key(label), int(value), toks, current=True, bound=True, weight=0.01)
        )
        return cid

    def prefer_shown(self, label: Key, weight: float = 100.0) -> None:
        """Make hiding a registered cell `weight` times as costly when secondary cells are
        chosen: a count that headline figures rest on gives way to its neighbours."""
        self.cells[self.labels[label]].weight = weight

    def table(
        self,
        name: str,
        frame: pl.DataFrame,
        counts: dict[str, KeyFn],
        rests_on: dict[str, list[str]] | None = None,
        bounds: dict[str, KeyFn] | None = None,
        keys: Sequence[Key] = (),
        labels: Sequence[str] = (),
        caption: str = "",
        measures: dict[str, Callable[[dict], str] | tuple[Callable[[dict], str], list[str]] | None] | None = None,
    ) -> None:
        """Register a published frame. `counts`: count column -> label of the count it shows
        (None for a row without that count); each count column has its pupils beside it in
        `<col>__members`. `rests_on`: figure column -> the count columns it is computed
        from; a figure not named rests on every count of its row. Columns in `labels`,
        string, boolean and date columns and label columns are labels and never hidden.
        `measures`: figure column -> the name of what it measures for a row (default: the
        table, column and row labels), optionally with the count columns whose pupils it
        describes (default: those it rests on), so that the same measure of the same pupils
        in another table or publication must have the same value; None for a figure that is
        not a property of its pupils alone (a q-value depends on the other tests). `bounds`:
        column -> label of a number at least the count of its pupils (`bound`), with its
        pupils beside it like a count's; it is hidden like a count and figures may rest on it."""
        bounds = bounds or {}
        if name in self.tables:
            raise ValueError(f"table {name} is registered twice")
        missing = [c for c in [*counts, *bounds] if members(c) not in frame.columns]
        if missing:
            raise ValueError(f"table {name}: count column(s) {missing} have no pupils beside them ({members('…')})")
        row_tokens = {col: self._row_tokens(frame, col) for col in [*counts, *bounds]}
        row_ids = []
        for n, row in enumerate(frame.drop([members(c) for c in [*counts, *bounds]]).iter_rows(named=True)):
            ids: dict[str, str | None] = {}
            for col, fn in [*counts.items(), *bounds.items()]:
                label = fn(row)
                value = row[col]
                if label is None or value is None or _nan(value):
                    ids[col] = None
                    continue
                register = self.bound if col in bounds else self.count
                ids[col] = register(label, value=value, tokens=row_tokens[col][n])
            row_ids.append(ids)
        counts = {**counts, **bounds}
        key_ids = []
        for k in keys:
            if k not in self.labels:
                raise ValueError(f"table {name} rests on {describe_key(k)}, which no table registers")
            key_ids.append(self.labels[k])
        shown = frame.drop([members(c) for c in counts] + ["suppressed"], strict=False)
        label_cols = set(labels) | {c for c, t in shown.schema.items() if t in (pl.String, pl.Boolean, pl.Date)}
        for fn in counts.values():
            label_cols |= set(getattr(fn, "columns", []))
        label_cols -= set(counts)
        figures = [c for c in shown.columns if c not in label_cols and c not in counts]
        for c, on in (rests_on or {}).items():
            if c in counts or c not in shown.columns or any(x not in counts for x in on):
                raise ValueError(f"table {name}: {c} must be a figure column resting on count columns (got {on})")
        rests = {c: list(counts) for c in figures} | (rests_on or {})
        self.tables[name] = Table(name, shown, list(counts), rests, key_ids, caption, row_ids, measures or {})
        self._labels_of[name] = sorted((label_cols & set(shown.columns)) - set(rests))

    @property
    def _labels_of(self) -> dict[str, list[str]]:
        if not hasattr(self, "_label_cols"):
            self._label_cols: dict[str, list[str]] = {}
        return self._label_cols

    # --- measures: one number per population ----------------------------------------------
    def _measures(self) -> pl.DataFrame:
        """Every figure with the sets it rests on (hidden flags filled in by Protected)."""
        rows = []
        for t in self.tables.values():
            label_cols = self._labels_of.get(t.name, [])
            for row, ids in zip(t.frame.iter_rows(named=True), t.row_ids, strict=True):
                for col, on in t.rests_on.items():
                    value = row.get(col)
                    if value is None or not isinstance(value, (int, float)) or _nan(value):
                        continue
                    if col in t.measures and t.measures[col] is None:
                        continue  # not a property of the pupils alone (a q-value depends on the other tests)
                    spec = t.measures.get(col)
                    if isinstance(spec, tuple):  # (name, the counts that say whose measure it is)
                        spec, on = spec
                    sets = sorted({ids[c] for c in on if ids.get(c)} | set(t.keys))
                    if not sets:
                        continue
                    name = (
                        spec(row)
                        if spec is not None
                        else (f"{t.name}.{col}[" + ", ".join(f"{c}={row[c]}" for c in label_cols) + "]")
                    )
                    if self.meta.get("year") is not None:  # a later year's report follows longer
                        name += f" (uppföljningsår {self.meta['year']})"
                    rows.append(
                        {
                            "measure": name,
                            "sets": "+".join(sets),
                            "value": float(value),
                            "col": col,
                            "table": t.name,
                            "on": on,
                        }
                    )
        return pl.DataFrame(
            rows,
            schema={
                "measure": pl.String,
                "sets": pl.String,
                "value": pl.Float64,
                "col": pl.String,
                "table": pl.String,
                "on": pl.List(pl.String),
            },
        )

    def _check_measures(self, prior: Prior, mine: pl.DataFrame) -> None:
        both = mine.join(prior.measures.filter(~pl.col("hidden")), on=["measure", "sets"], suffix="_prior")
        for r in both.iter_rows(named=True):
            a, b = r["value"], r["value_prior"]
            if not math.isclose(a, b, rel_tol=SAME_VALUE_RTOL, abs_tol=1e-12):
                raise DisclosureError(
                    f"{r['measure']} of the same pupils was published as {b:.6g} by an earlier publication of "
                    f"this store and would be {a:.6g} now: one population, two numbers. The store's data "
                    "changed since then, or the figure is computed another way; publish it under another name "
                    "or remove the earlier publication from the ledger ("
                    + str(self.ledger.folder if self.ledger else "")
                    + ")"
                )

    # --- protection -----------------------------------------------------------------------
    def protect(self, max_rounds: int = 60) -> Protected:
        prior = self.ledger.prior() if self.ledger is not None else None
        measures = self._measures()
        if prior is not None:
            self._check_measures(prior, measures)
        cells = self._with_prior(prior)
        system = _System.build(cells, self.min_cell)
        hidden = system.solve(max_rounds)
        prot = Protected(self, system, hidden, measures)
        if self.ledger is not None:
            prot.record()
        return prot

    def _with_prior(self, prior: Prior | None) -> list[Cell]:
        cells = dict(self.cells)
        if prior is not None and prior.cells.height:
            grouped = prior.members.group_by("cell_id").agg(pl.col("token"))
            tokens = {
                r["cell_id"]: np.sort(np.asarray(r["token"], dtype=np.uint64)) for r in grouped.iter_rows(named=True)
            }
            for r in (
                prior.cells.group_by("cell_id")
                .agg(
                    pl.col("label").first(),
                    pl.col("hidden").all(),
                    pl.col("value").drop_nulls().first(),
                    pl.col("min_cell").max(),
                )
                .sort("cell_id")  # a fixed order: the searches' budgets break ties by position
                .iter_rows(named=True)
            ):
                cid = r["cell_id"]
                state = "hidden" if r["hidden"] else "published"  # published anywhere: public
                c = cells.get(cid)
                if c is None:
                    toks = tokens.get(cid, np.empty(0, dtype=np.uint64))
                    bound = cid.startswith(BOUND)  # its value is in its identity, hidden or not
                    cells[cid] = Cell(
                        cid,
                        r["label"],
                        int(cid.rsplit(":", 1)[1]) if bound else len(toks),
                        toks,
                        prior=state,
                        families={family_of(r["label"])},
                        need=int(r["min_cell"]),
                        bound=bound,
                        weight=0.01 if bound else 1.0,
                    )
                else:
                    # Hidden before: held to the promise of the reports that hid it (this one
                    # cannot widen what they pinned, and must not narrow it below their width).
                    c.prior = state
                    c.need = int(r["min_cell"])
        for c in cells.values():
            c.need = c.need or self.min_cell
        return list(cells.values())


# --- the protected publication ------------------------------------------------------------
class Protected:
    """Protected frames (hidden values null, `<col>__hidden` flags, row `suppressed`) and the
    audit's result; recorded in the store's ledger."""

    def __init__(self, pub: Publication, system: _System, hidden: set[int], measures: pl.DataFrame) -> None:
        self.pub, self.min_cell = pub, pub.min_cell
        cells = system.cells
        n_pub = system.n_published
        self.hidden_ids = {cells[i].id for i in hidden if i < n_pub}
        mine = [c for c in cells[:n_pub] if c.current]
        shown_hidden = [c for c in mine if c.id in self.hidden_ids and c.prior != "hidden"]
        self.n_primary = sum(c.value < self.min_cell and not c.bound for c in shown_hidden)
        self.n_secondary = len(shown_hidden) - self.n_primary
        self.n_prior_hidden = sum(c.prior == "hidden" for c in mine)
        self.n_already_public = sum(c.prior == "published" for c in mine)
        # shown although below min_cell: an earlier publication (at a lower threshold) showed them
        self.n_public_small = sum(c.prior == "published" and 0 < c.value < self.min_cell and not c.bound for c in mine)
        derived = [i for i in range(n_pub, len(cells)) if 0 < cells[i].value < cells[i].need]
        self.n_derived = len(derived)
        ranges = system.ranges
        self.ranges = {cells[i].id: r for i, r in ranges.items() if i < n_pub}
        self.derived_ranges = {cells[i].label: r for i, r in ranges.items() if i >= n_pub}
        # Each hidden count keeps the promise of the publications that hold it: this one's
        # min_cell for its own counts, an earlier threshold for counts only earlier ones hold.
        self.audit_passed = all(hi - lo >= cells[i].need for i, (lo, hi) in ranges.items() if i < n_pub)
        self.lower_promises = sorted({cells[i].need for i in hidden if cells[i].need < self.min_cell})
        self._measures = measures

    def is_hidden(self, cid: str | None) -> bool:
        return cid is not None and cid in self.hidden_ids

    def frame(self, name: str) -> pl.DataFrame:
        t = self.pub.tables[name]
        table_hidden = any(self.is_hidden(k) for k in t.keys)
        flags: dict[str, list[bool]] = {c: [] for c in [*t.counts, *t.rests_on]}
        for ids in t.row_ids:
            for c in t.counts:
                flags[c].append(table_hidden or self.is_hidden(ids[c]))
            for c, on in t.rests_on.items():
                flags[c].append(table_hidden or any(self.is_hidden(ids.get(x)) for x in on))
        out = t.frame
        for c, f in flags.items():
            mask = pl.Series(f"{c}{HIDDEN_SUFFIX}", f, dtype=pl.Boolean)
            out = out.with_columns(mask, pl.when(mask).then(None).otherwise(pl.col(c)).alias(c))
        any_hidden = pl.any_horizontal(pl.col(f"{c}{HIDDEN_SUFFIX}") for c in flags) if flags else pl.lit(table_hidden)
        return out.with_columns(any_hidden.fill_null(False).alias("suppressed"))

    def __getitem__(self, name: str) -> pl.DataFrame:
        return self.frame(name)

    def row(self, name: str) -> dict:
        """A one-row table (numbers for a sentence) as a dict of protected values."""
        return self.frame(name).row(0, named=True)

    def hidden_measures(self) -> pl.DataFrame:
        sets_hidden = [any(s in self.hidden_ids for s in sets.split("+")) for sets in self._measures["sets"]]
        return self._measures.with_columns(pl.Series("hidden", sets_hidden, dtype=pl.Boolean))

    def record(self) -> None:
        """Add this publication to the store's ledger: every published cell (its value, or
        null where hidden), its pupils as tokens, and every figure with the sets it rests on."""
        ledger = self.pub.ledger
        if ledger is None:
            return
        mine = [c for c in self.pub.cells.values()]
        cells = pl.DataFrame(
            {
                "cell_id": [c.id for c in mine],
                "label": [c.label for c in mine],
                "value": [None if c.id in self.hidden_ids else c.value for c in mine],
                "hidden": [c.id in self.hidden_ids for c in mine],
            },
            schema={"cell_id": pl.String, "label": pl.String, "value": pl.Int64, "hidden": pl.Boolean},
        )
        nonempty = [c for c in mine if c.tokens is not None and len(c.tokens)]
        members_frame = pl.DataFrame(
            {
                "cell_id": [c.id for c in nonempty for _ in range(len(c.tokens))],  # type: ignore[arg-type]
                "token": np.concatenate([c.tokens for c in nonempty]) if nonempty else np.empty(0, np.uint64),  # type: ignore[misc]
            },
            schema={"cell_id": pl.String, "token": pl.UInt64},
        )
        ledger.record(self.pub.meta, cells, members_frame, self.hidden_measures())

    def methods_text(self) -> str:
        """Swedish paragraph for the methods appendix, stating only what holds."""
        state = (
            "Granskningen godkände mönstret: för varje dold uppgift över noll är spannet av värden som stämmer "
            f"med allt som publicerats ur databasen minst {self.min_cell} brett"
            + (", utom där en tidigare rapport satt en lägre gräns (nedan)." if self.lower_promises else ".")
            if self.audit_passed
            else "Granskningen underkände mönstret."
        )
        earlier = ""
        if self.n_already_public:
            earlier = (
                f" {self.n_already_public} av rapportens antal har redan publicerats i en tidigare rapport ur samma "
                "databas; de är offentliga och räknas inte som skyddade här."
            )
        if self.n_prior_hidden:
            earlier += f" {self.n_prior_hidden} antal döljs för att en tidigare rapport dolde dem."
        if self.lower_promises:
            lower = " eller ".join(str(v) for v in self.lower_promises)
            earlier += (
                f" Uppgifter som en tidigare rapport med en lägre gräns ({lower}) dolde, och skillnader som bara "
                "bygger på sådana, hålls till den gränsen: den här rapporten kan inte vidga det som redan publicerats "
                "om dem, men smalnar inte heller av det."
            )
        return (
            f"**Röjandekontroll.** Uppgifter som vilar på färre än {self.min_cell} elever, också noll, visas som "
            f"`..` (primär sekretess, {self.n_primary} celler; alla nollor är en cell)"
            + (
                f", utom {self.n_public_small} antal som en tidigare rapport ur samma databas redan visat (de och det "
                "som följer av dem är offentliga)"
                if self.n_public_small
                else ""
            )
            + ". Att en uppgift är dold "
            "säger alltså inte att någon elev finns bakom den. Varje antal räknas tillsammans med de elever det "
            "gäller, så att samma elevgrupp i två tabeller är samma uppgift och sambanden mellan tabellerna (summor, "
            "delmängder, skillnader och överlapp, också mot tidigare rapporter ur samma databas) följer av "
            f"eleverna själva. Därför har ytterligare {self.n_secondary} celler dolts (sekundär sekretess). "
            "Innan rapporten skrevs beräknades för varje dold uppgift det minsta och största värde som är förenligt "
            "med allt som publicerats (linjärprogrammering, avrundat till hela elever), och likaså för "
            f"{self.n_derived} skillnader mellan publicerade elevgrupper med färre än {self.min_cell} elever. "
            f"{state}{earlier} Samma mönster gäller "
            "rapportens nedladdningsbara tabeller."
        )
