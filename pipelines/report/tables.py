"""HTML tables for the report: Swedish number format, `..` for suppressed, `.` for missing."""

from __future__ import annotations

import csv
from collections.abc import Callable
from functools import cache
from html import escape

import polars as pl

from pipelines.analysis.disclosure import HIDDEN_SUFFIX
from pipelines.analysis.suppress import SUPPRESSED, fmt_ci, fmt_int, fmt_num, fmt_pct
from pipelines.config import PACKAGE_DIR
from pipelines.ingest.kinds import LABELS as KIND_LABELS  # each input kind's Swedish name, defined with the kind
from pipelines.labels import VERDICT

Formatter = Callable[[dict], str]


def html_table(
    df: pl.DataFrame,
    columns: dict[str, tuple[str, Formatter]],
    caption: str = "",
    groups: list[tuple[str, int]] | None = None,
) -> str:
    """`columns`: key -> (header, row dict -> text). Keys in LABELS are row labels, never
    hidden and left-aligned. A frame protected by `pipelines.analysis.disclosure` flags each hidden
    value (`<column>__hidden`, the value itself is null): a cell shows `..` when its
    formatter reads a hidden value. A frame with only a row flag `suppressed` shows `..`
    in every figure of a suppressed row. `groups`: a header row above the column headers,
    (text, number of columns) from left to right ("" for columns without a group)."""
    per_cell = any(c.endswith(HIDDEN_SUFFIX) for c in df.columns)
    head = "".join(f'<th class="{"lab" if k in LABELS else "num"}">{escape(h)}</th>' for k, (h, _) in columns.items())
    if groups:
        assert sum(n for _, n in groups) == len(columns), "groups must span every column"
        top = "".join(
            f'<th colspan="{n}" class="group">{escape(g)}</th>' if g else f'<th colspan="{n}"></th>' for g, n in groups
        )
        head = f"{top}</tr><tr>{head}"
    body = []
    for row in df.iter_rows(named=True):
        cells = []
        for key, (_, fmt) in columns.items():
            if key in LABELS:
                cells.append(f'<td class="lab">{escape(fmt(row))}</td>')
                continue
            reads = _Reads(row)
            text = fmt(reads)
            hidden = (
                any(row.get(f"{c}{HIDDEN_SUFFIX}") for c in reads.read) if per_cell else bool(row.get("suppressed"))
            )
            cells.append(f'<td class="num">{escape(SUPPRESSED if hidden else text)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    return f'<table class="ppss">{cap}<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>{STYLE}'


class _Reads(dict):
    """A row that remembers which values a formatter read (to know if it read a hidden one)."""

    def __init__(self, row: dict) -> None:
        super().__init__(row)
        self.read: set[str] = set()

    def get(self, key: str, default: object = None) -> object:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> object:
        self.read.add(key)
        return super().__getitem__(key)


LABELS = {
    "label",
    "district",
    "pupil_group",
    "gender_label",
    "measure",
    "term_value",
    "source",
    "period",
    "kind",
    "rule",
    "message",
    "term_label",
    "covariate",
    "class_before",
    "class_after",
    "step",
    "reason",
    "size_kind",
    "programme",
}
# JupyterLab's stylesheet right-aligns every table cell; these selectors outrank it.
STYLE = (
    "<style>table.ppss{border-collapse:collapse;margin:.5em 0 1.5em}"
    ".jp-RenderedHTMLCommon table.ppss td,.jp-RenderedHTMLCommon table.ppss th,table.ppss td,table.ppss th{"
    "border-bottom:1px solid #ddd;padding:.25em .6em}"
    ".jp-RenderedHTMLCommon table.ppss .lab,table.ppss .lab{text-align:left}"
    ".jp-RenderedHTMLCommon table.ppss .num,table.ppss .num{text-align:right;font-variant-numeric:tabular-nums}"
    "table.ppss caption{text-align:left;font-weight:600;padding:.3em 0}</style>"
)


def col(key: str, kind: str = "text", decimals: int = 0) -> Formatter:
    fmts = {
        "text": lambda v: "." if v is None else str(v),
        "int": fmt_int,
        "pct": lambda v: fmt_pct(v, decimals),
        "num": lambda v: fmt_num(v, decimals),
    }
    f = fmts[kind]
    return lambda row: f(row.get(key))


def ci(lo: str = "lo", hi: str = "hi") -> Formatter:
    return lambda row: fmt_ci(row.get(lo), row.get(hi))


def quality_table(files: pl.DataFrame) -> str:
    df = files.with_columns(pl.col("kind").replace_strict(KIND_LABELS, default=pl.col("kind")).alias("label"))
    return html_table(
        df,
        {
            "label": ("Indata", col("label")),
            "files": ("Filer", col("files", "int")),
            "files_rejected": ("Avvisade filer", col("files_rejected", "int")),
            "rows_read": ("Rader lästa", col("rows_read", "int")),
            "rows_loaded": ("Laddade", col("rows_loaded", "int")),
            "rows_invalid": ("Karantän: fel i raden", col("rows_invalid", "int")),
            "rows_held": ("Karantän: motsäger annan fil", col("rows_held", "int")),
            "rows_unused": ("Används inte", col("rows_unused", "int")),
        },
        "Filer och rader per indatakälla (lästa = laddade + karantän + används inte). "
        "Rader som motsäger en annan fil (till exempel betyg för en elev som saknas i personregistret) "
        "prövas igen vid varje inläsning"
        + (
            ". Registret har en rad för varje inskriven elev, så dess antal rader är ett tak för antalet elever; "
            "här skulle det avslöja en dold uppgift och döljs därför (..)"
            if df.get_column("rows_loaded__hidden").any()
            else ""
        ),
    )


RULE_EXPLANATIONS = PACKAGE_DIR / "data" / "rule_explanations.csv"


@cache
def rule_explanations() -> dict[str, str]:
    """Each quarantine rule in Swedish, for the report (the id stays for data stewards)."""
    with RULE_EXPLANATIONS.open(encoding="utf-8", newline="") as fh:
        return {r["rule"]: r["explanation"] for r in csv.DictReader(fh)}


def rules_table(rules: pl.DataFrame) -> str:
    if rules.is_empty():
        return "<p>Inga rader har satts i karantän.</p>"
    sv = rule_explanations()
    df = rules.with_columns(
        pl.col("kind").replace_strict(KIND_LABELS, default=pl.col("kind")).alias("label"),
        pl.col("rule").replace_strict(sv, default="Förklaring saknas.").alias("message"),
    )
    return html_table(
        df,
        {
            "label": ("Indata", col("label")),
            "message": ("Vad som var fel", col("message")),
            "rule": ("Regel (id)", col("rule")),
            "n_rows": ("Rader", col("n_rows", "int")),
        },
        "Rader i karantän per regel (id: regelns namn i ppss status och valideringsrapporten)",
    )


def coverage_table(cov: pl.DataFrame) -> str:
    return html_table(
        cov,
        {
            "source": ("Datakälla", col("source")),
            "k": ("Inskrivna elever som finns", col("k", "int")),
            "n": ("Inskrivna elever", col("n", "int")),
            "share": ("Andel", col("share", "pct")),
        },
        # every enrolled pupil is counted (a census, not a sample): no interval
        "Täckning: hur många av programmets elever som återfinns i skolans data",
    )


def enrolled_table(enr: pl.DataFrame) -> str:
    """District x year with a `Totalt` row per year, from `followup.enrolled_by_district`."""
    years = sorted(enr.get_column("year").unique().to_list())
    flag = f"n_pupils{HIDDEN_SUFFIX}"
    wide = enr.select("district").unique(maintain_order=True).rename({"district": "label"})
    for y in years:
        part = enr.filter(pl.col("year") == y).select(
            pl.col("district").alias("label"),
            pl.col("n_pupils").alias(f"y{y}"),
            *([pl.col(flag).alias(f"y{y}{HIDDEN_SUFFIX}")] if flag in enr.columns else []),
        )
        wide = wide.join(part, on="label", how="left", maintain_order="left")
    return html_table(
        wide,
        {"label": ("Stadsdel", col("label")), **{f"y{y}": (str(y), col(f"y{y}", "int")) for y in years}},
        "Elever inskrivna första gången, per stadsdel och år",
    )


def other_programmes_table(apart: pl.DataFrame) -> str:
    """Pupils of the register's other programmes (SkolFam), counted apart from PPSS."""
    return html_table(
        apart,
        {
            "programme": ("Program", col("programme")),
            "n_pupils": ("Elever inskrivna", col("n_pupils", "int")),
            "n_also_ppss": ("Av dem också i PPSS", col("n_also_ppss", "int")),
        },
        "Andra program i socialtjänstens register: räknas inte som PPSS i rapportens siffror",
    )


def targets_table(targets: pl.DataFrame, districts: list[str] | None = None) -> str:
    """The city's documented enrolments beside the register's (of `districts` only, if given)."""
    registered = "I registret" if not districts else "I registret, " + ", ".join(sorted(districts))
    return html_table(
        targets,
        {
            "period": ("Period", col("period")),
            "documented": (
                "Enligt stadens dokument (hela staden)" if districts else "Enligt stadens dokument",
                col("documented", "int"),
            ),
            "registered": (registered, col("registered", "int")),
            "source": ("Källa", col("source")),
        },
        "Inskrivna elever jämfört med stadens egna uppgifter",
    )


def eligibility_table(elig: pl.DataFrame) -> str:
    return html_table(
        elig.sort("measure", "pupil_group", "gender_label"),
        {
            "measure": ("Mått", col("measure")),
            "pupil_group": ("Grupp", col("pupil_group")),
            "gender_label": ("Kön", col("gender_label")),
            "n": ("Elever", col("n", "int")),
            "share": ("Andel behöriga", col("share", "pct")),
            "ci": ("95 % KI", ci()),
        },
        "Behörighet efter årskurs 9 (vårterminen)",
    )


def context_table(ctx: pl.DataFrame) -> str:
    return html_table(
        ctx,
        {
            "label": ("Grupp", col("label")),
            "n": ("Elever", col("n", "int")),
            "share_eligible_vocational": ("Behöriga till yrkesprogram", col("share_eligible_vocational", "pct", 1)),
            "share_all_subjects_passed": ("Godkända i alla ämnen", col("share_all_subjects_passed", "pct", 1)),
            "mean_merit_value_17": ("Genomsnittligt meritvärde (17)", col("mean_merit_value_17", "num", 1)),
        },
        "Årskurs 9 i programmet jämfört med Stockholm och riket (meritvärde: elever med minst ett godkänt betyg, "
        "som i Skolverkets statistik). Källa: Skolverkets officiella statistik för årskurs 9.",
    )


def balance_table(bal: pl.DataFrame) -> str:
    return html_table(
        bal.with_columns(pl.lit(False).alias("suppressed")),
        {
            "measure": ("Utfall (analysurval)", col("measure")),
            "covariate": ("Mått vid baslinjen", col("covariate")),
            "before": ("Skillnad före vägning", col("before", "num", 2)),
            "class_before": ("WWC", col("class_before")),
            "after": ("Skillnad efter vägning", col("after", "num", 2)),
            "class_after": ("WWC", col("class_after")),
        },
        "Baslinjens likvärdighet i varje utfalls analysurval (Hedges g respektive Cox index)",
    )


BAND_SUFFIX = "_band"


def nested_bands(values: list[int | None], hidden: list[bool]) -> list[str | None]:
    """A chain of nested counts, largest first (enrolled, with data, in the estimate): each
    hidden one as the interval its nearest shown neighbours give, "285–330" (or "≥ 136" with
    only a smaller one shown). It repeats shown counts and the chain's order, which the table
    states anyway, so it tells a reader nothing the shown cells do not: a coarser publication
    of the step than `..` (issue 20, item 4)."""
    shown = [v if not h else None for v, h in zip(values, hidden, strict=True)]
    out: list[str | None] = []
    for i, h in enumerate(hidden):
        if not h:
            out.append(None)
            continue
        above = next((v for v in reversed(shown[:i]) if v is not None), None)
        below = next((v for v in shown[i + 1 :] if v is not None), None)
        if below is None:
            out.append(None)
        elif above is None:
            out.append(f"≥ {fmt_int(below)}")
        else:
            out.append(f"{fmt_int(below)}–{fmt_int(above)}")
    return out


def with_bands(df: pl.DataFrame, chain: list[str], by: str | None = None, order: str | None = None) -> pl.DataFrame:
    """`<col>_band` for each count of `chain`: the columns of one row (largest first), or, with
    `by`, one column down the rows of each group in `order`."""
    flag = f"{{}}{HIDDEN_SUFFIX}"
    if by is None:
        bands = [
            nested_bands([r[c] for c in chain], [bool(r.get(flag.format(c))) for c in chain])
            for r in df.iter_rows(named=True)
        ]
        return df.with_columns(
            pl.Series(f"{c}{BAND_SUFFIX}", [b[j] for b in bands], dtype=pl.String) for j, c in enumerate(chain)
        )
    (c,) = chain
    df = df.with_row_index("_row")
    parts = []
    for _, g in df.sort(by, order or "_row", maintain_order=True).group_by(by, maintain_order=True):
        band = nested_bands(g[c].to_list(), [bool(x) for x in g[flag.format(c)].fill_null(False)])
        parts.append(g.select("_row").with_columns(pl.Series(f"{c}{BAND_SUFFIX}", band, dtype=pl.String)))
    return df.join(pl.concat(parts), on="_row").sort("_row").drop("_row")


def banded(key: str) -> Formatter:
    """A count, or where it is hidden the interval `with_bands` gave it (read instead of the
    hidden value, so the cell shows the interval), else `..`."""
    return lambda row: row.get(f"{key}{BAND_SUFFIX}") or fmt_int(row.get(key))


def has_band(*frames: pl.DataFrame) -> bool:
    """Whether `with_bands` gave any of the frames an interval (for the note below the tables)."""
    return any(f[c].drop_nulls().len() > 0 for f in frames for c in f.columns if c.endswith(BAND_SUFFIX))


# No number here: a sentence never states a bound on a hidden count (the interval is in the table).
BAND_NOTE = (
    "Ett dolt antal visas där det går som ett intervall, från det visade steget efter till det visade steget "
    "före (eller bara en nedre gräns, ≥): eleverna i ett steg är en del av eleverna i steget före, så "
    "intervallet följer av de visade talen och röjer inget nytt."
)


def attrition_table(att: pl.DataFrame) -> str:
    if f"n{HIDDEN_SUFFIX}" in att.columns and f"n{BAND_SUFFIX}" not in att.columns:
        att = with_bands(att, ["n"], by="outcome", order="step_no")
    return html_table(
        att,
        {
            "measure": ("Utfall", col("measure")),
            "step": ("Steg", col("step")),
            "n": ("Elever", banded("n")),
            "share": ("Andel av inskrivna", col("share", "pct")),
        },
        "Bortfall: inskrivna elever som når varje steg i analysen, per utfall",
    )


def _pp(key: str) -> Formatter:
    return lambda r: fmt_num(100 * r[key], 1) if r.get(key) is not None else "."


def _pp_ci(r: dict) -> str:
    """A 95 % interval in percentage points."""
    if r.get("lo") is None or r.get("hi") is None:
        return "."
    return f"{fmt_num(100 * r['lo'], 1)} till {fmt_num(100 * r['hi'], 1)}"


def _verdict_label(frame: pl.DataFrame, estimate: str) -> pl.DataFrame:
    """The verdict in words, where the estimate is shown (evidence.py; labels.VERDICT)."""
    if "verdict" not in frame.columns:
        return frame.with_columns(pl.lit("").alias("verdict_label"))
    words = pl.col("verdict").replace_strict(VERDICT, default="")
    shown = pl.when(pl.col(estimate).is_not_null()).then(words).otherwise(pl.lit(""))
    return frame.with_columns(shown.alias("verdict_label"))


def effects_table(eff: pl.DataFrame) -> str:
    return html_table(
        _verdict_label(eff, "difference"),
        {
            "measure": ("Utfall", col("measure")),
            "n_eligible": ("Som skattningen avser", col("n_eligible", "int")),
            "n_treated": ("Inskrivna i skattningen", col("n_treated", "int")),
            "n_comparison": ("Jämförelse", col("n_comparison", "int")),
            "difference": ("Procentenheter", _pp("difference")),
            "ci": ("95 % KI", _pp_ci),
            "effect_size": ("Storlek", col("effect_size", "num", 2)),
            "size_kind": ("Mått", col("size_kind")),
            "baseline": ("Likvärdighet (WWC)", col("baseline")),
            "evalue": ("E-värde", col("evalue", "num", 1)),
            "verdict": ("Slutsats", col("verdict_label")),
        },
        "Effekter: inskrivna jämfört med vägda jämförelseelever som ännu inte skrivits in",
        groups=[("", 1), ("Elever", 3), ("Effekt", 2), ("Effektstorlek", 2), ("", 3)],
    )


def groups_table(groups: pl.DataFrame) -> str:
    return html_table(
        _verdict_label(groups, "change").rename({"dimension": "label", "group": "reason"}),
        {
            "label": ("Indelning", col("label")),
            "reason": ("Grupp", col("reason")),
            "n": ("Inskrivna i skattningen", col("n", "int")),
            "change": ("Effekt på frånvaro (procentenheter)", _pp("change")),
            "ci": ("95 % KI", _pp_ci),
            "q_value": ("q (Benjamini–Hochberg)", _q("q_value")),
            "n_schools": ("Skolor", col("n_schools", "int")),
            "verdict": ("Slutsats", col("verdict_label")),
        },
        "Utforskande: effekten på frånvaro per grupp, var och en jämförd med sina jämförelseelever. "
        "Grupperna överlappar; q-värdet tar hänsyn till att många grupper prövas.",
    )


def followup_2015_tables(individual: pl.DataFrame, boys: pl.DataFrame) -> str:
    first = html_table(
        individual,
        {
            "label": ("Jämförelse", col("label")),
            "n": ("Elever", col("n", "int")),
            "share": ("Andel som ökade sin andel godkända", col("share", "pct")),
            "ci": ("95 % KI", ci()),
            "group_change": ("Förändring på gruppnivå (procentenheter)", _pp("group_change")),
            "gci": ("95 % KI", _pp_ci_of("group_lo", "group_hi")),
        },
        "Uppföljningen hösten 2015 återskapad: elever inskrivna senast vårterminen 2014 (termin 1 = VT 2014)",
    )
    second = html_table(
        boys,
        {
            "label": ("Termin", col("label")),
            "n": ("Pojkar", col("n", "int")),
            "mean_share_passed": ("Andel godkända ämnen (medel)", col("mean_share_passed", "pct")),
            "share": ("Behöriga till ES", col("share", "pct")),
            "ci": ("95 % KI", ci()),
        },
        "Pojkarna i samma grupp, termin för termin",
    )
    return first + second


def _q(key: str) -> Formatter:
    """A q- or p-value: two decimals, and "< 0,01" rather than a misleading 0,00."""
    return lambda r: "." if r.get(key) is None else ("<\u00a00,01" if r[key] < 0.01 else fmt_num(r[key], 2))


def _pp_ci_of(lo: str, hi: str) -> Formatter:
    return lambda r: _pp_ci({"lo": r.get(lo), "hi": r.get(hi)})


def attrition_group_table(df: pl.DataFrame) -> str:
    if f"n{HIDDEN_SUFFIX}" in df.columns and f"n{BAND_SUFFIX}" not in df.columns:
        df = with_bands(df, ["n", "n_eligible", "n_matched"])
    return html_table(
        df,
        {
            "label": ("Indelning", col("label")),
            "reason": ("Grupp", col("reason")),
            "n": ("Inskrivna", banded("n")),
            "n_eligible": ("Med uppgifter före och efter", banded("n_eligible")),
            "n_matched": ("I skattningen", banded("n_matched")),
            "share": ("Andel av dem med uppgifter", col("share", "pct")),
        },
        "Bortfall för effekten på frånvaro, per kön och stadsdel",
    )
