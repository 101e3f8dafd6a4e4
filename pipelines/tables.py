"""HTML tables for the report: Swedish number format, `..` for suppressed, `.` for missing."""

from __future__ import annotations

from collections.abc import Callable
from html import escape

import polars as pl

from .suppress import SUPPRESSED, fmt_ci, fmt_int, fmt_num, fmt_pct

Formatter = Callable[[dict], str]


def html_table(df: pl.DataFrame, columns: dict[str, tuple[str, Formatter]], caption: str = "") -> str:
    """`columns`: key -> (header, row dict -> text). Keys in LABELS are row labels: never
    suppressed, left-aligned; every other cell of a suppressed row shows `..`."""
    head = "".join(f'<th class="{"lab" if k in LABELS else "num"}">{escape(h)}</th>' for k, (h, _) in columns.items())
    body = []
    for row in df.iter_rows(named=True):
        cells = []
        for key, (_, fmt) in columns.items():
            if key in LABELS:
                cells.append(f'<td class="lab">{escape(fmt(row))}</td>')
            else:
                cells.append(f'<td class="num">{escape(SUPPRESSED if row.get("suppressed") else fmt(row))}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    return f'<table class="ppss">{cap}<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>{STYLE}'


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


KIND_LABELS = {
    "persons": "Personer (SS 12000)",
    "organisations": "Organisationer (SS 12000)",
    "school_units": "Skolenheter (skolenheter.csv)",
    "grades": "Betyg (Skolplattformen)",
    "attendance": "Närvaro (SS 12000)",
    "register": "Socialtjänstens register",
}


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
        "prövas igen vid varje inläsning",
    )


def rules_table(rules: pl.DataFrame) -> str:
    if rules.is_empty():
        return "<p>Inga rader har satts i karantän.</p>"
    df = rules.with_columns(pl.col("kind").replace_strict(KIND_LABELS, default=pl.col("kind")).alias("label"))
    return html_table(
        df,
        {
            "label": ("Indata", col("label")),
            "rule": ("Regel", col("rule")),
            "n_rows": ("Rader", col("n_rows", "int")),
            "message": ("Vad regeln säger", col("message")),
        },
        "Rader i karantän per regel",
    )


def coverage_table(cov: pl.DataFrame) -> str:
    return html_table(
        cov,
        {
            "source": ("Datakälla", col("source")),
            "k": ("Inskrivna elever som finns", col("k", "int")),
            "n": ("Inskrivna elever", col("n", "int")),
            "share": ("Andel", col("share", "pct")),
            "ci": ("95 % KI", ci()),
        },
        "Täckning: hur många av programmets elever som återfinns i skolans data",
    )


def enrolled_table(enr: pl.DataFrame) -> str:
    """District x year, suppressed cells `..`, with a total per year (secondary suppression applied)."""
    years = sorted(enr.get_column("year").unique().to_list())
    rows = []
    for district in sorted(enr.get_column("district").drop_nulls().unique().to_list()):
        part = enr.filter(pl.col("district") == district)
        row = {"label": district}
        for y in years:
            cell = part.filter(pl.col("year") == y)
            row[str(y)] = (
                "0" if cell.is_empty() else SUPPRESSED if cell["suppressed"][0] else fmt_int(cell["n_pupils"][0])
            )
        rows.append(row)
    total = {"label": "Totalt", **{str(y): fmt_int(enr.filter(pl.col("year") == y)["n_pupils"].sum()) for y in years}}
    df = pl.DataFrame([*rows, total], schema={"label": pl.String, **{str(y): pl.String for y in years}})
    return html_table(
        df,
        {"label": ("Stadsdel", col("label")), **{str(y): (str(y), col(str(y))) for y in years}},
        "Elever inskrivna första gången, per stadsdel och år",
    )


def targets_table(targets: pl.DataFrame) -> str:
    return html_table(
        targets,
        {
            "period": ("Period", col("period")),
            "documented": ("Enligt stadens dokument", col("documented", "int")),
            "registered": ("I registret", col("registered", "int")),
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
        "som i Skolverkets statistik). Källor: Skolverkets officiella statistik, "
        "se pipelines/data/published_figures.csv",
    )
