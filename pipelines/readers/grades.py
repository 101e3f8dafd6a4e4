"""Skolplattformen "Betyg API" v1.1 grade exports (data contract 1.3), streamed.

The file is parsed with iterparse and each <elev> is cleared once read, so memory stays
bounded whatever the export's size. Rows are <ämnesbetyg> and <kursbetyg> elements; only
ämnesbetyg in skolform GR are used, the rest are counted as unused.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from ..config import GRADE_SCHOOL_FORM, VALIDATION_BATCH_ROWS
from ..identity import GUID_RE, normalise_guid, platform_ref
from . import Extract, FileRejected, sniff, with_date_checks

NS = "http://pingpong.se/schemas/grades/v1.1"
_Q = f"{{{NS}}}"

# Lgr11 subject codes (domain rules). Skolverket's long codes GRGRxxx01 name the same subjects;
# GRGRMSP01 (moderna språk) does not say whether it is språkval or elevens val and is read as
# språkval (M2), the usual case in årskurs 6-9.
SUBJECTS = {
    "BI",
    "BL",
    "EN",
    "FY",
    "GE",
    "HI",
    "HKK",
    "IDH",
    "KE",
    "MA",
    "MU",
    "RE",
    "SH",
    "SL",
    "SV",
    "SVA",
    "TK",
    "NO",
    "SO",
    "M1",
    "M2",
    "ML",
    "TSP",
}
LONG_CODES = {
    "BIO": "BI",
    "BIL": "BL",
    "ENG": "EN",
    "FYS": "FY",
    "GEO": "GE",
    "HIS": "HI",
    "HKK": "HKK",
    "IDR": "IDH",
    "KEM": "KE",
    "MAT": "MA",
    "MUS": "MU",
    "REL": "RE",
    "SAM": "SH",
    "SLJ": "SL",
    "SVE": "SV",
    "SVA": "SVA",
    "TEK": "TK",
    "MSP": "M2",
    "MOD": "ML",
    "TSP": "TSP",
}
LANGUAGE_SUBJECTS = {"M1", "M2", "ML"}

SCHEMA = {
    "_row": pl.Int64,
    "_loc": pl.String,
    "person_ref": pl.String,
    "person_id_status": pl.String,
    "grade": pl.String,
    "decision_date": pl.String,
    "is_retest": pl.Boolean,
    "school_ref": pl.String,
    "school_form": pl.String,
    "subject_code": pl.String,
    "subject": pl.String,
    "language": pl.String,
    "term": pl.String,
    "term_year": pl.String,
    "term_from_date": pl.Boolean,
    "is_final": pl.Boolean,
}


def normalise_subject(code: str | None, language: str | None) -> tuple[str | None, str | None]:
    """(subject, language) from a short code (`M2`, `M2DEU`), or a long code (`GRGRMOD01`)."""
    if code is None:
        return None, None
    c = code.strip().upper()
    if c.startswith("GRGR") and len(c) >= 7:
        c = LONG_CODES.get(c[4:7], c)
    if c[:2] in LANGUAGE_SUBJECTS:
        lang = (language or c[2:] or "").strip().upper() or None
        return c[:2], lang
    return (c if c in SUBJECTS else None), None


def _fields(el: ET.Element) -> dict[str, str | None]:
    """Child elements by local name, text stripped; one pass instead of a find per field."""
    out: dict[str, str | None] = {}
    for child in el:
        text = child.text.strip() if child.text else None
        out[child.tag.removeprefix(_Q)] = text or None
    return out


def _check_root(path: Path) -> dict[str, str | None]:
    for _, el in ET.iterparse(path, events=("start",)):
        if el.tag != _Q + "betyg":
            ns = el.tag[1:].split("}")[0] if el.tag.startswith("{") else "no namespace"
            raise FileRejected(
                "file_format",
                f"XML with root <{el.tag.split('}')[-1]}> in {ns}, not <betyg> in {NS} "
                "(Skolplattformen Betyg API v1.1)",
            )
        return {"from": el.get("from"), "tom": el.get("tom")}
    return {}


def read_grades(path: Path, key: bytes, chunk_rows: int = VALIDATION_BATCH_ROWS) -> Extract:
    """The export as a stream of frames of at most `chunk_rows` grades; counts fill in as it is read."""
    with open(path, "rb") as fh:
        kind = sniff(fh.read(512))
    if kind != "an XML document":
        raise FileRejected("file_format", f"this is {kind}, not a Skolplattformen grade export (XML)")
    try:
        attrs = _check_root(path)
    except ET.ParseError as e:
        raise _cut_off(e) from None
    ex = Extract(
        rows=None,
        unused_note="course grades and grades of other school forms than GR",
        extras={"export_from": attrs.get("from"), "export_tom": attrs.get("tom"), "pupils": []},
    )
    ex.stream = lambda: _stream(path, key, ex, chunk_rows)
    return ex


def _cut_off(e: ET.ParseError) -> FileRejected:
    return FileRejected(
        "file_format",
        f"the XML breaks off or is malformed at line {e.position[0]}, column {e.position[1]} "
        "(a cut-off transfer looks like this): fetch the export again",
    )


def _stream(path: Path, key: bytes, ex: Extract, chunk_rows: int) -> Iterator[pl.DataFrame]:
    rows: list[dict] = []
    pupils: set[str] = set()
    school_refs: dict[str | None, str | None] = {}
    elev_i = 0
    yielded = False
    elev_tag, term_tag = _Q + "elev", _Q + "termin"
    parser = ET.iterparse(path, events=("end",))
    while True:
        try:
            _, el = next(parser)
        except StopIteration:
            break
        except ET.ParseError as e:
            raise _cut_off(e) from None
        if el.tag != elev_tag:
            continue
        elev_i += 1
        guid = normalise_guid(el.get("id"))
        ref = platform_ref(key, "person", guid)
        id_status = "ok" if guid and GUID_RE.match(guid) else "malformed"
        if ref and id_status == "ok":
            pupils.add(ref)
        counters = {"ämnesbetyg": 0, "kursbetyg": 0}
        for g in el:
            tag = g.tag.removeprefix(_Q)
            if tag not in counters:
                continue
            counters[tag] += 1
            ex.rows_read += 1
            f = _fields(g)
            form = f.get("skolform")
            if tag == "kursbetyg" or (form is not None and form != GRADE_SCHOOL_FORM):
                ex.rows_unused += 1
                continue
            subject, language = normalise_subject(f.get("ämnesförkortning"), f.get("språk"))
            term = term_year = None
            term_el = g.find(term_tag)
            if term_el is not None:
                t = _fields(term_el)
                term, term_year = t.get("typ"), t.get("år")
            datum = f.get("datum")
            from_date = term is None and term_year is None
            if from_date and datum and len(datum) >= 7 and datum[5:7].isdigit():
                # No <termin>: January-June is VT, otherwise HT (data contract 1.3).
                term, term_year = ("VT" if int(datum[5:7]) <= 6 else "HT"), datum[:4]
            skola = f.get("skola")
            if skola not in school_refs:
                school_refs[skola] = platform_ref(key, "organisation", skola)
            rows.append(
                {
                    "_row": ex.rows_read - 1,
                    "_loc": f"/betyg/elev[{elev_i}]/{tag}[{counters[tag]}]",
                    "person_ref": ref,
                    "person_id_status": id_status,
                    "grade": f.get("value"),
                    "decision_date": datum,
                    "is_retest": (f.get("prövning") or "").lower() == "true",
                    "school_ref": school_refs[skola],
                    "school_form": form,
                    "subject_code": f.get("ämnesförkortning"),
                    "subject": subject,
                    "language": language,
                    "term": term,
                    "term_year": term_year,
                    "term_from_date": from_date,
                    "is_final": (f.get("slutbetyg") or "").lower() == "true",
                }
            )
        el.clear()
        if len(rows) >= chunk_rows:
            yield with_date_checks(pl.DataFrame(rows, schema=SCHEMA), ["decision_date"])
            rows, yielded = [], True
    ex.extras["pupils"] = sorted(pupils)
    if rows or not yielded:
        yield with_date_checks(pl.DataFrame(rows, schema=SCHEMA), ["decision_date"])
