"""Skolplattformen "Betyg API" v1.1 grade exports (data contract 1.3), streamed.

The file is parsed with lxml's iterparse, hardened (no DTD, no entity expansion, no network,
no huge-tree mode), and each <elev> is cleared once read, so memory stays bounded whatever
the export's size. Rows are <ämnesbetyg> and <kursbetyg> elements; only ämnesbetyg in
skolform GR are used, the rest are counted as unused.

Elements are matched by local name in the export's namespace or in none: an `xmlns=""` on
<elev> (as some exporters write) leaves it a pupil of this export. An element in any other
namespace is a clear rejection, never a silent skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import IO

import polars as pl
from lxml import etree

from pipelines.config import GRADE_SCHOOL_FORM, VALIDATION_BATCH_ROWS
from pipelines.ingest.readers import (
    EARLIEST,
    FUTURE_HORIZON,
    Extract,
    FileRejected,
    GradeExport,
    InputKind,
    ReadContext,
    add_problem,
    as_date,
    normalise_date,
    sniff,
    with_date_checks,
)
from pipelines.rules.identity import GUID_RE, normalise_guid, platform_ref

NS = "http://pingpong.se/schemas/grades/v1.1"
_OWN = {NS, None}

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
    "row_problem": pl.String,
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


_TAGS: dict[str, tuple[str | None, str]] = {}  # lxml tag -> (namespace, local name), for speed


def _local(el: etree._Element) -> tuple[str | None, str]:
    tag = el.tag
    found = _TAGS.get(tag)
    if found is None:
        q = etree.QName(el)
        found = _TAGS[tag] = (q.namespace, q.localname)
    return found


def _foreign(el: etree._Element) -> FileRejected:
    ns, name = _local(el)
    return FileRejected(
        "xml_namespace",
        f"element <{name}> at line {el.sourceline} is in namespace {ns}, not the export's namespace {NS}: "
        "the export was changed after it left Skolplattformen, or comes from another system; ask for it again",
    )


def _iterparse(fh: IO[bytes], events: tuple[str, ...], tag: str | None = None) -> etree.iterparse:
    # Hardened: entities stay unexpanded and any DTD is refused (checked at the root), no
    # network access, and libxml2's limits on depth and text size stay on (huge_tree=False).
    return etree.iterparse(
        fh,
        events=events,
        tag=tag,
        resolve_entities=False,
        load_dtd=False,
        no_network=True,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def _check_root(el: etree._Element) -> dict[str, str | None]:
    # The platform writes a bare `<!DOCTYPE xml>`; entity declarations it never writes (they are
    # how entity-expansion and external-entity payloads work).
    dtd = el.getroottree().docinfo.internalDTD
    if dtd is not None and (list(dtd.iterentities()) or list(dtd.iterelements())):
        raise FileRejected(
            "xml_dtd",
            "the XML declares entities or elements in its <!DOCTYPE>, which a Skolplattformen export never "
            "does (entity-expansion and external-entity attacks look like this); nothing was expanded or "
            "loaded. Treat the file as suspect: ask where it comes from and for the export again",
        )
    ns, name = _local(el)
    if (ns, name) != (NS, "betyg"):
        raise FileRejected(
            "file_format",
            f"XML with root <{name}> in {ns or 'no namespace'}, not <betyg> in {NS} (Skolplattformen Betyg API v1.1)",
        )
    return {"from": el.get("from"), "tom": el.get("tom")}


def _syntax_error(e: etree.XMLSyntaxError, path: Path) -> FileRejected:
    """A message naming the real cause; libxml2's own text is not passed on (it can quote bytes)."""
    line, col = (e.position or (0, 0))[:2]
    where = f"line {line}, column {col}"
    msg = (e.msg or "").lower()
    if "encoding" in msg or "not proper utf" in msg or "char 0x" in msg or "invalid char" in msg:
        return FileRejected(
            "encoding",
            f"bytes at {where} are not valid in the encoding the XML declares (UTF-8 unless its first line says "
            "otherwise): the file was re-saved in another encoding than it declares. Ask for the export again "
            "and do not open and save it in an editor",
        )
    if "entity" in msg:
        return FileRejected(
            "xml_entity",
            f"the XML uses an entity (&name;) at {where} that a Skolplattformen export never uses; "
            "nothing was expanded or loaded. Treat the file as suspect and ask for the export again",
        )
    if "depth" in msg or "huge" in msg:
        return FileRejected(
            "file_shape",
            f"the XML is nested deeper, or holds longer text, than any grade export could (at {where}); "
            "nothing was loaded. Ask where the file comes from and for the export again",
        )
    with open(path, "rb") as fh:
        fh.seek(max(0, path.stat().st_size - 64))
        tail = fh.read()
    if "premature end" in msg or "not found" in msg or "no element found" in msg or not _ends_root(tail):
        return FileRejected(
            "file_format",
            f"the XML breaks off at {where} before its closing </betyg> (a cut-off transfer looks like this): "
            "fetch the export again",
        )
    return FileRejected(
        "file_format",
        f"the XML is malformed at {where} (a tag not closed, closed in the wrong order, or text that is not "
        "XML): the file was changed or damaged after export; ask for the export again",
    )


def _start_of_xml(path: Path) -> int:
    """Where the XML starts: blank lines (or spaces) before `<?xml`, as some export tools write them,
    are harmless to a reader but a syntax error to libxml2, so the parser starts after them."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    bom = 3 if head.startswith(b"\xef\xbb\xbf") else 0
    body = head[bom:]
    skipped = len(body) - len(body.lstrip(b" \t\r\n"))
    return bom + skipped if skipped and body[skipped:].startswith(b"<?xml") else 0


def _open_xml(path: Path) -> IO[bytes]:
    fh = open(path, "rb")  # noqa: SIM115 - closed by the caller's with block
    fh.seek(_start_of_xml(path))
    return fh


def _ends_root(tail: bytes) -> bool:
    text = tail.replace(b"\x00", b"").strip().lower()
    return text.endswith(b"betyg>")


def read_grades(path: Path, key: bytes, on: date | None = None, chunk_rows: int = VALIDATION_BATCH_ROWS) -> Extract:
    """The export as a stream of frames of at most `chunk_rows` grades; counts fill in as it is read."""
    on = on or date.today()
    with open(path, "rb") as fh:
        kind = sniff(fh.read(1024))
    if kind != "an XML document":
        raise FileRejected("file_format", f"this is {kind}, not a Skolplattformen grade export (XML)")
    attrs: dict[str, str | None] = {}
    with _open_xml(path) as fh:
        try:
            for _, el in _iterparse(fh, ("start",)):
                attrs = _check_root(el)
                break
        except etree.XMLSyntaxError as e:
            raise _syntax_error(e, path) from None
    period = {k: normalise_date(attrs.get(k)) for k in ("from", "tom")}
    for k, value in period.items():
        if value is not None and as_iso(value) is None:
            raise FileRejected(
                "export_period",
                f"the export's <betyg {k}=...> is not a date (YYYY-MM-DD or YYYYMMDD), so the export cannot be "
                "ordered against other exports: ask for the export again",
            )
    tom = as_iso(period["tom"])
    if tom is not None and tom > on + FUTURE_HORIZON:
        raise FileRejected(
            "export_period",
            "the export's <betyg tom=...> lies far in the future, so it would rank as the newest export of "
            "all: ask for the export again with its real period",
        )
    ex = Extract(
        rows=None,
        unused_note="course grades and grades of other school forms than GR",
        export=GradeExport(period["from"], period["tom"]),
    )
    if _start_of_xml(path):
        ex.notes.append("blank line(s) before the XML declaration skipped (harmless)")
    if period["tom"] is None:
        ex.notes.append("no export period (<betyg tom>): ranked older than every export that has one")
    ex.stream = lambda: _stream(path, key, ex, chunk_rows, on)
    return ex


def as_iso(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _frame(rows: list[tuple], on: date) -> pl.DataFrame:
    df = with_date_checks(pl.DataFrame(rows, schema=SCHEMA, orient="row"), ["decision_date"])
    # A grade is decided on or before the day it is exported; a later date or term would also
    # create terms beyond the data's own years.
    df = add_problem(df, as_date("decision_date") > pl.lit(on), "date_in_future:datum")
    df = add_problem(df, as_date("decision_date") < pl.lit(EARLIEST), "date_implausible:datum")
    year = pl.col("term_year").cast(pl.Int32, strict=False)
    df = add_problem(df, year < EARLIEST.year, "date_implausible:termin")
    term_start = pl.date(year.clip(EARLIEST.year, 9999), pl.when(pl.col("term") == "HT").then(7).otherwise(1), 1)
    return add_problem(df, term_start > pl.lit(on), "date_in_future:termin")


# Child elements the reader uses, by lxml tag in the export's namespace and in none: one dict
# lookup per child instead of splitting its name (most of the reader's time on a large export).
_FIELDS = ("value", "datum", "prövning", "skola", "skolform", "ämnesförkortning", "språk", "slutbetyg", "termin")
_FIELD_AT = {f"{{{NS}}}{name}": k for k, name in enumerate(_FIELDS)} | {name: k for k, name in enumerate(_FIELDS)}
_TERMIN = _FIELDS.index("termin")
_GRADE_TAGS = {f"{{{NS}}}{t}": t for t in ("ämnesbetyg", "kursbetyg")} | {t: t for t in ("ämnesbetyg", "kursbetyg")}


def _texts(el: etree._Element) -> tuple[list[str | None], etree._Element | None]:
    """The used children's texts, stripped (empty as None; a repeated child: the last one), and
    the first <termin>; a child in another namespace rejects the file."""
    out: list[str | None] = [None] * len(_FIELDS)
    term = None
    for child in el:
        k = _FIELD_AT.get(child.tag)
        if k is None:
            if isinstance(child.tag, str) and _local(child)[0] not in _OWN:
                raise _foreign(child)
            continue  # an unknown element of the export's own namespace, or an entity reference
        text = child.text
        out[k] = (text.strip() or None) if text else None
        if k == _TERMIN and term is None:
            term = child
    return out, term


_TERM_AT = {f"{{{NS}}}typ": 0, "typ": 0, f"{{{NS}}}år": 1, "år": 1}


def _term(el: etree._Element) -> tuple[str | None, str | None]:
    """<termin>'s <typ> and <år>, as `_texts` reads a grade's children."""
    out: list[str | None] = [None, None]
    for child in el:
        k = _TERM_AT.get(child.tag)
        if k is None:
            if isinstance(child.tag, str) and _local(child)[0] not in _OWN:
                raise _foreign(child)
            continue
        text = child.text
        out[k] = (text.strip() or None) if text else None
    return out[0], out[1]


def _stream(path: Path, key: bytes, ex: Extract, chunk_rows: int, on: date) -> Iterator[pl.DataFrame]:
    rows: list[tuple] = []
    pupils: set[str] = set()
    school_refs: dict[str | None, str | None] = {}
    subjects: dict[tuple[str | None, str | None], tuple[str | None, str | None]] = {}
    dates: dict[str | None, str | None] = {}
    elev_i = 0
    yielded = False
    with _open_xml(path) as fh:
        parser = _iterparse(fh, ("end",), tag="{*}elev")  # pupils in any namespace; the rest is skipped in C
        while True:
            try:
                _, el = next(parser)
            except StopIteration:
                break
            except etree.XMLSyntaxError as e:
                raise _syntax_error(e, path) from None
            if _local(el)[0] not in _OWN:
                raise _foreign(el)
            elev_i += 1
            guid = normalise_guid(el.get("id"))
            ref = platform_ref(key, "person", guid)
            id_status = "ok" if guid and GUID_RE.match(guid) else "malformed"
            if ref and id_status == "ok":
                pupils.add(ref)
            n_subject = n_course = 0
            for g in el:
                tag = _GRADE_TAGS.get(g.tag)
                if tag is None:
                    if isinstance(g.tag, str):
                        gns, name = _local(g)
                        if name in ("ämnesbetyg", "kursbetyg") and gns not in _OWN:
                            raise _foreign(g)
                    continue
                ex.rows_read += 1
                if tag == "kursbetyg":
                    n_course += 1
                    _texts(g)  # its children are checked as well
                    ex.rows_unused += 1
                    continue
                n_subject += 1
                (value, datum, retest, skola, form, code, lang, final, _), term_el = _texts(g)
                if form is not None and form != GRADE_SCHOOL_FORM:
                    ex.rows_unused += 1
                    continue
                if (code, lang) not in subjects:
                    subjects[code, lang] = normalise_subject(code, lang)
                subject, language = subjects[code, lang]
                term = term_year = None
                if term_el is not None:
                    term, term_year = _term(term_el)
                if datum not in dates:
                    dates[datum] = normalise_date(datum)
                datum = dates[datum]
                from_date = term is None and term_year is None
                if from_date and datum and len(datum) >= 7 and datum[5:7].isdigit():
                    # No <termin>: January-June is VT, otherwise HT (data contract 1.3).
                    term, term_year = ("VT" if int(datum[5:7]) <= 6 else "HT"), datum[:4]
                if skola not in school_refs:
                    school_refs[skola] = platform_ref(key, "organisation", skola)
                rows.append(
                    (
                        ex.rows_read - 1,
                        f"/betyg/elev[{elev_i}]/ämnesbetyg[{n_subject}]",
                        None,
                        ref,
                        id_status,
                        value,
                        datum,
                        (retest or "").lower() == "true",
                        school_refs[skola],
                        form,
                        code,
                        subject,
                        language,
                        term,
                        term_year,
                        from_date,
                        (final or "").lower() == "true",
                    )
                )
            # Free the pupil and what came before it, so memory stays bounded.
            el.clear()
            while el.getprevious() is not None:
                del el.getparent()[0]
            if len(rows) >= chunk_rows:
                yield _frame(rows, on)
                rows, yielded = [], True
    ex.export = GradeExport(ex.export.export_from, ex.export.export_tom, sorted(pupils))
    if rows or not yielded:
        yield _frame(rows, on)


def table_rows(rows: pl.DataFrame, dropped: set[int]) -> dict[str, pl.DataFrame]:
    return {
        "src_grades": rows.select(
            pl.col("_loc").alias("location"),
            pl.col("_row").alias("seq"),
            "person_ref",
            "subject",
            "language",
            "grade",
            "term",
            pl.col("term_year").cast(pl.Int32),
            pl.col("decision_date").str.to_date(strict=False),
            "is_retest",
            "is_final",
            "school_ref",
        )
    }


def export_rows(path: Path, ex: Extract) -> dict[str, pl.DataFrame]:
    """Once per export: its period and which pupils it holds. Typed columns keep an all-null
    period of an old export loadable."""
    export = ex.export or GradeExport(None, None)
    period = pl.DataFrame(
        {"file_name": [path.name], "export_from": [export.export_from], "export_tom": [export.export_tom]},
        schema={"file_name": pl.String, "export_from": pl.String, "export_tom": pl.String},
    ).with_columns(pl.col("export_from", "export_tom").str.to_date("%Y-%m-%d", strict=False))
    pupils = pl.DataFrame({"person_ref": export.pupils}, schema={"person_ref": pl.String})
    return {"src_grade_exports": period, "src_grade_export_pupils": pupils}


def _read(path: Path, ctx: ReadContext) -> Extract:
    return read_grades(path, ctx.key, ctx.on, ctx.chunk_rows)


KIND = InputKind(
    name="grades",
    patterns=("betyg*.xml",),
    tables=("src_grade_exports", "src_grade_export_pupils", "src_grades"),
    label="Betyg (Skolplattformen)",
    row_unit="betygselement (ämnesbetyg och kursbetyg)",
    row_unit_en="grade elements (ämnesbetyg and kursbetyg)",
    check_unit="en rad per betygselement",
    read=_read,
    table_rows=table_rows,
    file_rows=export_rows,
)
