"""Downloads of published tables: files an analyst can open in polars and in Excel.

`write_downloads` takes one PROTECTED table, as `pipelines.analysis.disclosure.Protected.frame`
returns it, and writes beside each other in `folder`:

- `<name>.csv`: tidy and machine-readable. UTF-8 without BOM, `,` between fields, `.` as the
  decimal mark, LF line ends, one header row of the frame's column names and nothing else (no
  caption line, no thousands separators, no `%`: a share is a fraction 0-1). A hidden cell is
  empty, and so is a missing one; the column `<col>_status` beside each value column tells
  them apart: `visad`, `dold` (hidden by disclosure control) or `saknas` (no value exists).
- `<name>.xlsx`: the same rows and columns for Excel (any locale: cells are typed numbers,
  shares shown as percentages), plus a sheet `om_tabellen` with the caption and the table's
  part of the data dictionary.
- `datakatalog.csv`: the folder's data dictionary (same CSV dialect), one row per column of
  every table written there: `table, column, description, unit, table_caption`. Writing a
  table again replaces its rows; other tables' rows stay.

Protection is the caller's: only a protected frame is accepted (it has `<col>__hidden` flags
or a `suppressed` column), and a flagged cell is written empty whatever value it holds.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from pipelines.analysis.disclosure import HIDDEN_SUFFIX
from pipelines.labels import VERDICT

DICTIONARY = "datakatalog.csv"
DICTIONARY_COLUMNS = ["table", "column", "description", "unit", "table_caption"]
STATUS_SUFFIX = "_status"
SHOWN, HIDDEN, MISSING = "visad", "dold", "saknas"
SHARE_UNIT = "andel (0–1)"
DIFF_UNIT = "skillnad i andel (0,01 = 1 procentenhet)"

# Descriptions and units of the column names the follow-up's tables share; `columns` adds to
# and overrides them. A description may end with its unit in brackets: "Andel behöriga [andel (0–1)]".
GLOSSARY: dict[str, tuple[str, str]] = {
    "year": ("År", "år"),
    "term_year": ("Läsår (vårterminens år)", "år"),
    "term_label": ("Termin", ""),
    "term_index": ("Terminens ordningsnummer (för sortering)", ""),
    "district": ("Stadsdel", ""),
    "pupil_group": ("Elevgrupp", ""),
    "gender_label": ("Kön", ""),
    "measure": ("Mått", ""),
    "event_month": ("Månader från inskrivning", "månader"),
    "threshold": ("Frånvarogräns", SHARE_UNIT),
    "n": ("Antal elever", "antal elever"),
    "n_pupils": ("Antal elever", "antal elever"),
    "k": ("Antal elever med utfallet", "antal elever"),
    "share": ("Andel elever", SHARE_UNIT),
    "mean": ("Medelvärde", ""),
    "lo": ("Nedre gräns för 95 % konfidensintervall", ""),
    "hi": ("Övre gräns för 95 % konfidensintervall", ""),
    # data quality (section Dataunderlag och datakvalitet)
    "kind": ("Indatakälla eller typ av fel", ""),
    "files": ("Antal filer", "antal filer"),
    "files_rejected": ("Filer som avvisades helt", "antal filer"),
    "rows_read": ("Rader lästa (= laddade + karantän + används inte)", "antal rader"),
    "rows_loaded": ("Rader som laddades i databasen", "antal rader"),
    "rows_quarantined": ("Rader i karantän", "antal rader"),
    "rows_invalid": ("Rader i karantän för fel i raden", "antal rader"),
    "rows_held": ("Rader i karantän för att de motsäger en annan fil (prövas igen vid varje inläsning)", "antal rader"),
    "rows_unused": ("Rader som medvetet inte används (t.ex. andra skolformer)", "antal rader"),
    "rule": ("Valideringsregelns id (docs/data-contract.md)", ""),
    "message": ("Vad som var fel och vad som ska göras", ""),
    "n_rows": ("Antal rader", "antal rader"),
    "source": ("Datakälla", ""),
    # enrolment and targets
    "period": ("Period", ""),
    "first_day": ("Periodens första dag", "datum"),
    "last_day": ("Periodens sista dag", "datum"),
    "documented": ("Antal inskrivna enligt stadens egen redovisning", "antal elever"),
    "registered": ("Antal inskrivna enligt registret i den här uppföljningen", "antal elever"),
    "programme": ("Insats eller program", ""),
    "n_also_ppss": ("Av dem också inskrivna i PPSS", "antal elever"),
    "term_value": ("Urvalsgrund eller insats som registrerats", ""),
    "n_district": ("Antal inskrivna elever i stadsdelen", "antal elever"),
    "label": ("Grupp, steg eller indelning (se tabellens rubrik)", ""),
    # grades and eligibility
    "spring_year": ("Vårtermin (år) då årskurs 9 avslutades", "år"),
    "k_vocational": ("Antal behöriga till yrkesprogram", "antal elever"),
    "k_all_passed": ("Antal godkända i alla ämnen", "antal elever"),
    "share_eligible_vocational": ("Andel behöriga till yrkesprogram", SHARE_UNIT),
    "share_all_subjects_passed": ("Andel godkända i alla ämnen", SHARE_UNIT),
    "mean_merit_value_17": ("Genomsnittligt meritvärde (17 ämnen)", "meritpoäng"),
    "mean_term_1": ("Andel godkända ämnen, första terminen (medel)", SHARE_UNIT),
    "mean_term_2": ("Andel godkända ämnen, andra terminen (medel)", SHARE_UNIT),
    "mean_share_passed": ("Andel godkända ämnen (medel)", SHARE_UNIT),
    "term_no": ("Terminens nummer räknat från inskrivningen", ""),
    "direction": ("Riktning på elevens förändring (ökat, oförändrat, minskat)", ""),
    "change": ("Förändring eller effekt", DIFF_UNIT),
    "group_change": ("Förändring på gruppnivå", DIFF_UNIT),
    "group_lo": ("Nedre gräns för 95 % konfidensintervall, gruppnivå", DIFF_UNIT),
    "group_hi": ("Övre gräns för 95 % konfidensintervall, gruppnivå", DIFF_UNIT),
    # the evaluation
    "outcome": ("Utfallets id (samma i alla år och filer)", ""),
    "step": ("Steg i bortfallet, från inskrivna till skattningen", ""),
    "step_no": ("Stegets ordningsnummer", ""),
    "n_enrolled": ("Inskrivna elever", "antal elever"),
    "n_eligible": ("Inskrivna elever med uppgifter före och efter (som skattningen avser)", "antal elever"),
    "n_matched": ("Inskrivna elever i skattningen (med jämförbara elever)", "antal elever"),
    "n_treated": ("Inskrivna elever i skattningen", "antal elever"),
    "n_comparison": ("Jämförelseelever med vikt i skattningen", "antal elever"),
    "n_schools": ("Skolor som de inskrivna eleverna går i (intervallets kluster)", "antal skolor"),
    "reason": ("Grupp eller skäl till bortfall", ""),
    "difference": ("Skattad effekt: inskrivna minus vägda jämförelseelever, förändring efter mot före", DIFF_UNIT),
    "att": ("Skattad effekt den månaden (inskrivna minus vägda jämförelseelever)", DIFF_UNIT),
    "robust_lo": ("Nedre gräns för intervallet som tål avvikelser från parallella trender", DIFF_UNIT),
    "robust_hi": ("Övre gräns för intervallet som tål avvikelser från parallella trender", DIFF_UNIT),
    "breakdown": (
        "Brytpunkt: hur många gånger större än före inskrivningen en avvikelse från parallella trender "
        "måste vara innan intervallet täcker noll",
        "kvot",
    ),
    "pretrend_p": ("p-värde för test av skillnad i trend före inskrivningen", "p-värde"),
    "effect_size": ("Effektstorlek (se size_kind)", "standardiserad skillnad"),
    "size_kind": ("Effektstorlekens mått (Hedges g för mått på en skala, Cox index för ja/nej-utfall)", ""),
    "evalue": ("E-värde: hur stark en okänd störfaktor måste vara för att förklara bort skattningen", "kvot"),
    "evalue_ci": ("E-värde för intervallets gräns närmast noll", "kvot"),
    "baseline": ("Likvärdighet vid baslinjen enligt What Works Clearinghouse", ""),
    "verdict": ("Slutsatsens kod: " + "; ".join(f"{k} = {v.lower()}" for k, v in VERDICT.items() if v), ""),
    "covariate": ("Mått vid baslinjen som grupperna jämförs på", ""),
    "before": ("Standardiserad skillnad mellan grupperna före vägning", "standardiserad skillnad"),
    "after": ("Standardiserad skillnad mellan grupperna efter vägning", "standardiserad skillnad"),
    "class_before": ("Likvärdighet före vägning enligt What Works Clearinghouse", ""),
    "class_after": ("Likvärdighet efter vägning enligt What Works Clearinghouse", ""),
    "dimension": ("Indelning (t.ex. stadsdel, kön, insats)", ""),
    "group": ("Grupp inom indelningen", ""),
    "p_value": ("p-värde (tvåsidigt) för att effekten är noll", "p-värde"),
    "q_value": ("q-värde: p-värde justerat för många test (Benjamini–Hochberg)", "q-värde"),
}
_UNIT = re.compile(r"^(.*?)\s*\[([^\]]*)\]\s*$")


def cell_status(frame: pl.DataFrame, column: str) -> pl.Expr:
    """`visad`, `dold` or `saknas` for each cell of `column` of a protected frame."""
    flag = f"{column}{HIDDEN_SUFFIX}"
    hidden = pl.col(flag).fill_null(False) if flag in frame.columns else pl.lit(False)
    return (
        pl.when(hidden)
        .then(pl.lit(HIDDEN))
        .when(pl.col(column).is_null() | pl.col(column).cast(pl.Float64, strict=False).is_nan().fill_null(False))
        .then(pl.lit(MISSING))
        .otherwise(pl.lit(SHOWN))
    )


def _value_columns(frame: pl.DataFrame, columns: Sequence[str]) -> list[str]:
    """Columns that disclosure control may hide (those with a flag): the table's figures."""
    return [c for c in columns if f"{c}{HIDDEN_SUFFIX}" in frame.columns]


def _check_protected(frame: pl.DataFrame, name: str) -> None:
    if "suppressed" not in frame.columns and not any(c.endswith(HIDDEN_SUFFIX) for c in frame.columns):
        raise ValueError(
            f"{name}: not a protected frame (no `<col>{HIDDEN_SUFFIX}` flags, no `suppressed`): "
            "publish only what `Publication.protect()` returned"
        )


def _published(frame: pl.DataFrame, columns: list[str], values: list[str]) -> pl.DataFrame:
    """The columns to publish, hidden cells null whatever they held, a status beside each value
    column; decimals as floats, so no writer prints `decimal[38,0]` quirks."""
    out = frame.select(
        *(
            pl.when(pl.col(f"{c}{HIDDEN_SUFFIX}").fill_null(False)).then(None).otherwise(pl.col(c)).alias(c)
            if c in values
            else pl.col(c)
            for c in columns
        ),
        *(cell_status(frame, c).alias(f"{c}{STATUS_SUFFIX}") for c in values),
    )
    order = [x for c in columns for x in ([c, f"{c}{STATUS_SUFFIX}"] if c in values else [c])]
    casts = {
        c: (pl.Int64 if t.scale == 0 else pl.Float64)  # type: ignore[attr-defined]
        for c, t in out.schema.items()
        if isinstance(t, pl.Decimal)
    }
    out = out.with_columns(pl.col(c).cast(t) for c, t in casts.items())
    return out.select(order)


def _describe(column: str, dtype: pl.DataType, values: pl.Series, given: str | None) -> tuple[str, str]:
    text, unit = GLOSSARY.get(column, (column, ""))
    if given:
        m = _UNIT.match(given)
        text, unit = (m.group(1), m.group(2)) if m else (given, unit)
    elif column not in GLOSSARY:
        if dtype.is_integer():
            unit = "antal"
        elif dtype.is_float() and values.drop_nulls().drop_nans().is_between(0, 1).all() and values.drop_nulls().len():
            unit = SHARE_UNIT
    return text, unit


def dictionary_rows(
    name: str, frame: pl.DataFrame, caption: str, columns: dict[str, str] | None = None
) -> list[dict[str, str]]:
    """This table's rows of the data dictionary (as `write_downloads` writes them)."""
    _check_protected(frame, name)
    names = list(columns) if columns else _default_columns(frame)
    values = _value_columns(frame, names)
    out = _published(frame, names, values)
    rows = []
    for c in names:
        text, unit = _describe(c, out.schema[c], out[c], (columns or {}).get(c))
        rows.append({"table": name, "column": c, "description": text, "unit": unit, "table_caption": caption})
        if c in values:
            rows.append(
                {
                    "table": name,
                    "column": f"{c}{STATUS_SUFFIX}",
                    "description": f"{text}: {SHOWN}, {HIDDEN} (röjandekontroll: vilar på för få elever "
                    f"eller skulle avslöja en sådan uppgift) eller {MISSING} (värdet finns inte)",
                    "unit": "",
                    "table_caption": caption,
                }
            )
    return rows


def _default_columns(frame: pl.DataFrame) -> list[str]:
    return [c for c in frame.columns if not c.endswith(HIDDEN_SUFFIX) and c != "suppressed"]


def _replace(path: Path, write) -> None:
    """Write through a temporary file in the same folder: a reader never sees half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        # mkstemp makes the file private (0600); a download is as readable as the report beside it
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_xlsx(path: Path, table: pl.DataFrame, rows: list[dict[str, str]], caption: str) -> None:
    import xlsxwriter

    shares = {r["column"] for r in rows if r["unit"] == SHARE_UNIT}
    with xlsxwriter.Workbook(str(path)) as wb:
        bold = wb.add_format({"bold": True})
        pct = wb.add_format({"num_format": "0.0%"})
        ws = wb.add_worksheet("data")
        for j, c in enumerate(table.columns):
            ws.write_string(0, j, c, bold)
            fmt = pct if c in shares else None
            for i, v in enumerate(table[c].to_list(), start=1):
                if v is None or (isinstance(v, float) and v != v):
                    continue  # an empty cell, as in the CSV; the status column says why
                if isinstance(v, bool):
                    ws.write_boolean(i, j, v)
                elif isinstance(v, int | float):
                    ws.write_number(i, j, v, fmt)
                else:
                    ws.write_string(i, j, str(v))
            ws.set_column(j, j, max(10, min(40, len(c) + 2)))
        ws.freeze_panes(1, 0)
        about = wb.add_worksheet("om_tabellen")
        about.write_string(0, 0, caption, bold)
        for j, c in enumerate(DICTIONARY_COLUMNS[1:4]):
            about.write_string(2, j, c, bold)
        for i, r in enumerate(rows, start=3):
            for j, c in enumerate(DICTIONARY_COLUMNS[1:4]):
                about.write_string(i, j, r[c])
        about.set_column(0, 0, 24)
        about.set_column(1, 1, 70)


def write_downloads(
    name: str, frame: pl.DataFrame, caption: str, folder: Path, columns: dict[str, str] | None = None
) -> list[Path]:
    """Write one protected table as `<folder>/<name>.csv` and `<folder>/<name>.xlsx`, and its
    columns into `<folder>/datakatalog.csv`; returns those three paths in that order.

    - `name`: the file stem, also the table's name in the data dictionary (letters, digits, `_`, `-`).
    - `frame`: a protected frame (`Protected.frame(...)`): hidden cells null, a boolean
      `<col>__hidden` beside each column disclosure control may hide, a row flag `suppressed`.
      The flags themselves and `suppressed` are not written; `<col>_status` replaces them.
      A frame with neither flags nor `suppressed` is refused (ValueError).
    - `caption`: the table's Swedish caption (data dictionary and the xlsx's `om_tabellen`).
    - `columns`: the columns to write, in order, each with its Swedish description, which may end
      with its unit in brackets (`"Andel behöriga [andel (0–1)]"`). None: every column but the
      flags, described from `GLOSSARY` (unknown names by their own name; unit from the type).

    Value columns (those with a flag) get `<col>_status`: `visad`, `dold` or `saknas`. Numbers
    are written as they are (fractions stay fractions); decimals become integers or floats.
    Files are replaced whole (written to a temporary file first).
    """
    if not re.fullmatch(r"[\w-]+", name, flags=re.ASCII):
        raise ValueError(f"{name!r}: a download's name is letters, digits, _ and - only")
    _check_protected(frame, name)
    names = list(columns) if columns else _default_columns(frame)
    unknown = [c for c in names if c not in frame.columns]
    if unknown:
        raise ValueError(f"{name}: no column {', '.join(unknown)} in the frame")
    table = _published(frame, names, _value_columns(frame, names))
    rows = dictionary_rows(name, frame, caption, columns)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    csv, xlsx, dictionary = folder / f"{name}.csv", folder / f"{name}.xlsx", folder / DICTIONARY
    _replace(csv, lambda p: table.write_csv(p, separator=",", line_terminator="\n", null_value=""))
    _replace(xlsx, lambda p: _write_xlsx(p, table, rows, caption))
    old = (
        pl.read_csv(dictionary, schema=dict.fromkeys(DICTIONARY_COLUMNS, pl.String)).filter(pl.col("table") != name)
        if dictionary.exists()
        else pl.DataFrame(schema=dict.fromkeys(DICTIONARY_COLUMNS, pl.String))
    )
    new = pl.concat([old, pl.DataFrame(rows, schema=dict.fromkeys(DICTIONARY_COLUMNS, pl.String))])
    _replace(dictionary, lambda p: new.write_csv(p, separator=",", line_terminator="\n", null_value=""))
    return [csv, xlsx, dictionary]


def readable(frame: pl.DataFrame, percent: Sequence[str] = (), digits: int = 1) -> pl.DataFrame:
    """A protected frame for reading on screen (a notebook): the flags dropped, `percent`
    columns as Swedish percentages ("12,3 %"), other decimals with `digits` decimals and a
    decimal comma, and an empty value column cell written out as `dold` (hidden by disclosure
    control) or `saknas` (no value), never a bare null."""
    values = [c for c in _default_columns(frame) if f"{c}{HIDDEN_SUFFIX}" in frame.columns or c in percent]

    def text(c: str) -> pl.Expr:
        col = pl.col(c).cast(pl.Float64) if c in percent else pl.col(c)
        if c in percent:
            s = (
                (col * 100)
                .round(digits)
                .map_elements(
                    lambda v: f"{v:.{digits}f}".replace(".", ",").replace("-", "−") + "\u00a0%", return_dtype=pl.String
                )
            )
        elif frame.schema[c].is_float():
            s = col.map_elements(
                lambda v: f"{v:.{digits}f}".replace(".", ",").replace("-", "−"), return_dtype=pl.String
            )
        else:
            s = col.cast(pl.String)
        status = cell_status(frame, c)
        return pl.when(status == SHOWN).then(s).otherwise(status).alias(c)

    return frame.select(text(c) if c in values else pl.col(c) for c in _default_columns(frame))
