"""Bytes to text and JSON as exports come: what a file looks like (`sniff`), its one encoding
(`decode_text`), and an SS 12000 page's `data` array (`load_json_page`), each failure a
`FileRejected` that says what the file is instead."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson

from pipelines.ingest.readers.kind import FileRejected

_BOMS = [
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
]


def bom_encoding(raw: bytes) -> str | None:
    return next((enc for bom, enc in _BOMS if raw.startswith(bom)), None)


def sniff(raw: bytes) -> str:
    """A short description of what a file looks like, for messages about the wrong format."""
    enc = bom_encoding(raw)
    if enc and enc != "utf-8-sig":  # UTF-16/32 text: look at it decoded
        head_text = raw[:1024].decode(enc, errors="ignore").lstrip("\ufeff \t\r\n").lower()
        head = head_text[:512].encode("utf-8", errors="ignore")
    else:
        head = raw[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if not head:
        return "an empty file"
    if raw.startswith(b"\x1f\x8b"):
        return "a gzip-compressed file (unpack it, e.g. with gunzip or 7-Zip, and put the unpacked file in the folder)"
    if head.startswith(b"pk\x03\x04"):
        return "a zip container (an Excel workbook, or a zip archive to unpack first?)"
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        return "an HTML page (often an error page saved by a failed download)"
    if head.startswith(b"<"):
        return "an XML document"
    if head.startswith((b"{", b"[")):
        return "JSON"
    if b"\x00" in head:
        return "a binary file"
    return "text that is neither JSON nor XML"


def _line_no(raw: bytes, offset: int) -> int:
    return raw.count(b"\n", 0, offset) + 1


def decode_text(raw: bytes) -> tuple[str, str]:
    """Text of a file in the one encoding it is written in: UTF-8 (with or without BOM), UTF-16
    with BOM, or Windows-1252 as older Excel saves CSV. Detected per file: a file that mixes
    UTF-8 and Windows-1252 lines (rows pasted from two sources) is rejected, since decoding it
    either way would garble some of its rows."""
    enc = bom_encoding(raw)
    if enc:
        try:
            return raw.decode(enc).removeprefix("\ufeff"), enc
        except UnicodeDecodeError as e:
            raise FileRejected(
                "encoding",
                f"the file starts with a {enc.upper()} byte-order mark but is not valid {enc.upper()} "
                f"(near line {_line_no(raw, e.start)}); save it again in one encoding (CSV UTF-8) and load again",
            ) from None
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as e:
        first_bad = _line_no(raw, e.start)
    utf8_lines = sum(1 for line in raw.splitlines() if not line.isascii() and _decodes(line, "utf-8"))
    if utf8_lines:
        raise FileRejected(
            "encoding_mixed",
            f"the file mixes encodings: {utf8_lines} line(s) with å, ä or ö are UTF-8 but line {first_bad} "
            "(and maybe others) is not (Windows-1252?), so some rows would be garbled whichever is chosen; "
            "open it in Excel, correct the garbled letters and save the whole file again as 'CSV UTF-8', "
            "then run ppss ingest again",
        )
    return raw.decode("cp1252", errors="replace"), "windows-1252"


def _decodes(raw: bytes, encoding: str) -> bool:
    try:
        raw.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


# JSON integers longer than this stay text: Python refuses int() on thousands of digits, and
# no count in these exports comes near; validation then quarantines the value, not the file.
_MAX_INT_DIGITS = 30


def _int_or_text(text: str) -> int | str:
    return int(text) if len(text) <= _MAX_INT_DIGITS else text


def load_json_page(path: Path, what: str) -> list[Any]:
    """The `data` array of an SS 12000 page, or FileRejected saying what the file is instead."""
    raw = path.read_bytes()
    kind = sniff(raw)
    if kind != "JSON":
        raise FileRejected("file_format", f"this is {kind}, not SS 12000 {what} JSON")
    try:  # orjson where it reads the page (UTF-8, no BOM, 64-bit numbers): the same values, faster
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        doc = _load_json_text(raw, what)
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise FileRejected(
            "file_shape", f"JSON, but not an SS 12000 page: expected an object with a 'data' list of {what}"
        )
    return doc["data"]


def _load_json_text(raw: bytes, what: str) -> Any:
    """The page in whatever encoding it is written in, with the parser's position for a clear message."""
    text = decode_text(raw)[0]
    try:
        return json.loads(text, parse_int=_int_or_text)
    except RecursionError:
        raise FileRejected(
            "file_shape",
            "JSON nested deeper than any SS 12000 page could be (thousands of levels), so it is not an export "
            f"of {what}: ask where the file comes from and for the export again",
        ) from None
    except json.JSONDecodeError as e:
        raise FileRejected("file_format", _json_error(e, text)) from None


def _json_error(e: json.JSONDecodeError, text: str) -> str:
    where = f"line {e.lineno}, column {e.colno}"
    if e.msg == "Extra data":
        return (
            f"more than one JSON document in the file (a second one starts at {where}; JSON Lines, one record "
            "per line?), not one SS 12000 page: export the page as a single JSON object and load again"
        )
    # The parser stopped at the very end (or in a string running to the end): the rest is missing.
    if e.pos >= len(text.rstrip()) or e.msg.startswith("Unterminated string"):
        return f"the JSON breaks off before its end ({where}); a cut-off transfer looks like this: fetch the page again"
    return (
        f"not valid JSON at {where} ({e.msg}); the file was changed or damaged after export: "
        "fetch the page again, and do not edit it by hand"
    )
