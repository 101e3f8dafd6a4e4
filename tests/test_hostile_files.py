"""Hostile and random files (issue 10): the load never crashes and never leaks personal data.

- A property test writes random bytes, truncations and byte mutations of a valid file of every
  input kind and loads each alone: exit 0 or 2 (never a traceback or exit 1), one `load_log`
  row that reconciles, and no identity number, guid or name anywhere it could surface.
- A privacy test feeds identity numbers, guids and names into every field of every input kind
  at once, then scans the store, the console, `ppss status` and `reports/` (Data Docs included).
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import tempfile
from pathlib import Path

import duckdb
import pytest
import xlsxwriter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.cli import main
from pipelines.config import paths

from .contract_data import civic, write_inputs
from .test_bad_inputs import BASE, PERSONAL

KINDS = {
    "persons": "persons.json",
    "organisations": "organisations.json",
    "school_units": "skolenheter.csv",
    "grades": "betyg_2016-06.xml",
    "attendance": "attendance.json",
    "register_csv": "ppss_register.csv",
    "register_xlsx": "ppss_register.xlsx",
}


@functools.cache
def _valid_files() -> dict[str, bytes]:
    folder = Path(tempfile.mkdtemp(prefix="ppss-valid-"))
    write_inputs(folder, BASE)
    book = xlsxwriter.Workbook(str(folder / "ppss_register.xlsx"))
    sheet = book.add_worksheet()
    for r, line in enumerate((folder / "ppss_register.csv").read_bytes().decode("cp1252").splitlines()):
        sheet.write_row(r, 0, line.split(";"))
    book.close()
    files = {kind: (folder / name).read_bytes() for kind, name in KINDS.items()}
    shutil.rmtree(folder)
    return files


def _forbidden() -> set[str]:
    """The base delivery's identity numbers (12 and 10 digits), person guids and names."""
    values: set[str] = set()
    for p in json.loads(_valid_files()["persons"])["data"]:
        number = p["civicNo"]["value"]
        values |= {number, number[2:], p["id"], p["id"].upper(), p["givenName"], p["familyName"]}
    return values


def _store_text(store: Path, skip: frozenset[str] = frozenset()) -> str:
    """Every text value in every table of the store (but the `table.column`s in `skip`), for scanning."""
    con = duckdb.connect(str(store), read_only=True)
    try:
        columns = con.execute("""select table_name, column_name from information_schema.columns
                                 where data_type like 'VARCHAR%' and table_catalog <> 'temp'""").fetchall()
        parts = []
        for table, column in columns:
            if f"{table}.{column}" in skip:
                continue
            values = con.execute(f'select distinct "{column}" from "{table}"').fetchall()
            parts += [f"{table}.{column}: {v}" for (v,) in values]
        return "\n".join(parts)
    finally:
        con.close()


# Names of school units and districts, as the platform and skolenheter.csv give them: a person's
# name typed there cannot be told from a school's. Identity numbers and guids are kept out of
# them too (rule personal_data); only a name is let through, in these columns alone.
SCHOOL_TEXT = frozenset(
    {
        "src_organisations.display_name",
        "src_school_units.school_name",
        "src_school_units.district",
        "stg_school_units.school_name",
        "stg_school_units.district",
    }
)


@st.composite
def hostile(draw, valid: bytes) -> bytes:
    how = draw(st.sampled_from(["random", "truncated", "mutated"]))
    if how == "random":
        return draw(st.binary(max_size=4096))
    if how == "truncated":
        return valid[: draw(st.integers(0, len(valid)))]
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 8))):
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        op = draw(st.sampled_from(["flip", "insert", "delete"]))
        byte = draw(st.sampled_from([0, 0x22, 0x3B, 0x3C, 0x7B, 0x5B, 0xE5, 0xFF, 0x0A, 0x26, 0x2C]))
        if op == "flip" and data:
            data[pos] = byte
        elif op == "insert":
            data[pos:pos] = bytes([byte])
        elif data:
            del data[pos]
    return bytes(data)


@pytest.mark.parametrize("kind", list(KINDS))
@settings(max_examples=5, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_random_truncated_and_mutated_files_get_a_verdict(kind, data, capsys, monkeypatch) -> None:
    monkeypatch.setenv("PPSS_PSEUDONYM_KEY", "fuzz-key")
    content = data.draw(hostile(_valid_files()[kind]), label="file")
    root = Path(tempfile.mkdtemp(prefix="ppss-fuzz-"))
    try:
        (root / "raw").mkdir()
        (root / "raw" / KINDS[kind]).write_bytes(content)
        status = main(["ingest", "--raw", str(root / "raw"), "--store", str(root / "s.duckdb")])
        out = capsys.readouterr()
        assert status in (0, 2), out.err
        assert "Traceback" not in out.err and "internal error" not in out.err
        con = duckdb.connect(str(root / "s.duckdb"), read_only=True)
        try:
            log = con.execute("""select status, rows_read, rows_loaded, rows_quarantined, rows_unused
                                 from load_log""").fetchall()
        finally:
            con.close()
        assert len(log) == 1 and log[0][0] in ("loaded", "rejected")
        assert log[0][1] == log[0][2] + log[0][3] + log[0][4]
        assert (status == 2) == (log[0][0] == "rejected")
        text = out.out + out.err + _store_text(root / "s.duckdb")
        assert not PERSONAL.search(out.out + out.err)
        for value in _forbidden():
            assert value not in text, "personal data in the store or on the console"
    finally:
        shutil.rmtree(root)


# --- identity numbers, guids and names in every field of every input kind -------------------

SECRET_PNR = civic(77, "M", 2001)
SECRET_GUID = "d0d0cafe-1234-4abc-8def-0123456789ab"
SECRET_NAME = "Zelmira Hemligsson"
SECRETS = [SECRET_PNR, SECRET_GUID, SECRET_NAME]


def _leaves(value, path=()):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, (*path, i))
    else:
        yield path


def _set(record, path, value):
    for step in path[:-1]:
        record = record[step]
    record[path[-1]] = value


def _leaky_delivery(raw: Path) -> None:
    """The hand-written delivery plus, per field of every input kind, a file whose records hold
    an identity number, a guid and a name in that field (one record each)."""
    write_inputs(raw, BASE)
    for name in ("persons.json", "organisations.json", "attendance.json"):
        doc = json.loads((raw / name).read_text(encoding="utf-8"))
        first = doc["data"][0]
        for n, path in enumerate(_leaves(first)):
            records = []
            for secret in SECRETS:
                rec = json.loads(json.dumps(first))
                _set(rec, path, secret)
                records.append(rec)
            (raw / name.replace(".json", f"_leak{n}.json")).write_text(
                json.dumps({"data": records, "pageToken": None}), encoding="utf-8"
            )
    xml = (raw / "betyg_2016-06.xml").read_text(encoding="utf-8")
    first_elev = re.search(r"<elev .*?</elev>", xml).group(0)
    spots = [r'(<elev id=")[^"]*(")', r'( tom=")[^"]*(")']
    spots += [rf"(<{tag}>)[^<]*(</{tag}>)" for tag in re.findall(r"<(\w+)>[^<]*</\1>", first_elev)[:11]]
    for n, spot in enumerate(dict.fromkeys(spots)):
        if spot.startswith("( tom"):
            for k, secret in enumerate(SECRETS):
                text = re.sub(spot, lambda m, s=secret: m.group(1) + s + m.group(2), xml, count=1)
                (raw / f"betyg_leak{n}_{k}.xml").write_text(text, encoding="utf-8")
            continue
        elevs = [
            re.sub(spot, lambda m, s=secret: m.group(1) + s + m.group(2), first_elev, count=1) for secret in SECRETS
        ]
        text = xml.replace(first_elev, "".join(elevs))
        (raw / f"betyg_leak{n}.xml").write_text(text, encoding="utf-8")
    for name, encoding in (("ppss_register.csv", "cp1252"), ("skolenheter.csv", "utf-8")):
        header, row = (raw / name).read_bytes().decode(encoding).splitlines()[:2]
        for col in range(len(header.split(";"))):
            rows = []
            for secret in SECRETS:
                cells = row.split(";")
                cells[col] = secret
                rows.append(";".join(cells))
            (raw / name.replace(".csv", f"_leak{col}.csv")).write_bytes(
                ("\r\n".join([header, *rows]) + "\r\n").encode(encoding)
            )
    # an Excel register with every secret in every column, and names in a column of its own
    header = (raw / "ppss_register.csv").read_bytes().decode("cp1252").splitlines()[0].split(";")
    book = xlsxwriter.Workbook(str(raw / "ppss_leak.xlsx"))
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, [*header, "Namn"])
    for r, secret in enumerate(SECRETS, start=1):
        sheet.write_row(r, 0, [secret] * len(header) + [SECRET_NAME])
    book.close()


def _variants(value: str) -> set[str]:
    digits = re.sub(r"\D", "", value)
    if value == SECRET_PNR:
        return {value, digits[2:], f"{digits[2:8]}-{digits[8:]}", f"{digits[:8]}-{digits[8:]}"}
    if value == SECRET_GUID:
        return {value, value.upper()}
    return {value, value.split()[1]}


def test_no_identity_number_guid_or_name_surfaces_anywhere(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("PPSS_PSEUDONYM_KEY", "privacy-key")
    raw, store, out = tmp_path / "raw", tmp_path / "s.duckdb", tmp_path / "reports"
    _leaky_delivery(raw)
    assert len(list(raw.iterdir())) > 40
    scratch = tmp_path / "tmp"  # the temporary folder of this test alone: no other copy of Data Docs there
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    assert main(["ingest", "--raw", str(raw), "--store", str(store)]) in (0, 2)
    assert not [p for p in scratch.rglob("*") if p.suffix == ".html"], "GX left a copy of the Data Docs"
    assert main(["build", "--store", str(store)]) == 0
    assert main(["status", "--store", str(store)]) == 0
    assert main(["report", "--year", "2016", "--store", str(store), "--out", str(out), "--allow-rejected"]) == 0
    console = capsys.readouterr()
    assert "Traceback" not in console.err
    report_files = [p for p in out.rglob("*") if p.is_file()]
    docs = sorted((paths().reports / "validation").rglob("*.html"))
    assert len(docs) > 40, "Data Docs: one page per validated file"
    assert any("unexpected" in p.read_text(encoding="utf-8").lower() for p in docs), "failures are shown as counts"
    places = {"console": console.out + console.err, "store": _store_text(store, SCHOOL_TEXT)}
    for path in [*docs, *report_files]:
        places[str(path)] = path.read_bytes().decode("utf-8", errors="replace")
    forbidden = set().union(*(_variants(s) for s in SECRETS)) | _forbidden()
    for where, text in places.items():
        for value in forbidden:
            assert value not in text, (
                f"{value!r} surfaces in {where}: "
                + next((line for line in text.splitlines() if value in line), "")[:80]
            )
    # identity numbers and guids are kept out of the school columns as well
    for value in _variants(SECRET_PNR) | _variants(SECRET_GUID):
        assert value not in _store_text(store), value
