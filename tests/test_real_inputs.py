"""Files as real exports and real people make them (issue 10): the platform's own example
through the whole pipeline, valid variants that must load exactly like the hand-written
delivery, files the load cannot read, crash leftovers, and corrected copies.

Each case ingests through the command line like `test_bad_inputs.py` and checks the exit
status, the verdict and that every file's counts reconcile.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
import xlsxwriter

from pipelines.cli import main

from .contract_data import SCHOOL_A, civic, write_inputs
from .test_bad_inputs import BASE, PERSONAL

FIXTURES = Path(__file__).parent / "fixtures"
EXAMPLE = FIXTURES / "betyg-v1.1-example.xml"


@pytest.fixture(autouse=True)
def key(monkeypatch) -> None:
    monkeypatch.setenv("PPSS_PSEUDONYM_KEY", "real-inputs-key")


def _q(store: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(store), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _ingest(folder: Path, store: Path, capsys) -> tuple[int, str]:
    status = main(["ingest", "--raw", str(folder), "--store", str(store)])
    out = capsys.readouterr()
    assert "Traceback" not in out.err and "internal error" not in out.err, out.err
    assert not PERSONAL.search(out.out + out.err)
    for path, read, loaded, quarantined, unused in _q(
        store, "select path, rows_read, rows_loaded, rows_quarantined, rows_unused from load_log"
    ):
        assert read == loaded + quarantined + unused, f"{path} does not reconcile"
    return status, out.out


def _loaded_by_kind(store: Path) -> dict[str, int]:
    return dict(_q(store, "select kind, sum(rows_loaded) from load_log where status = 'loaded' group by kind"))


# --- the platform's own example ------------------------------------------------------------


def _example_persons(folder: Path) -> None:
    """A persons page holding the example's three pupils (their guids), so its grades link."""
    guids = re.findall(r'<elev id="\{([^}]+)\}"', EXAMPLE.read_text(encoding="utf-8"))
    people = [
        {"id": g, "civicNo": {"value": civic(60 + i, year=1999)}, "securityMarking": "Ingen", "enrolments": []}
        for i, g in enumerate(guids)
    ]
    (folder / "persons.json").write_text(json.dumps({"data": people, "pageToken": None}), encoding="utf-8")


def test_real_example_goes_through_ingest_build_and_report(tmp_path, capsys) -> None:
    raw, store, out = tmp_path / "raw", tmp_path / "s.duckdb", tmp_path / "reports"
    raw.mkdir()
    shutil.copyfile(EXAMPLE, raw / "betyg-exempel.xml")
    status, console = _ingest(raw, store, capsys)
    assert status == 0
    # 7 grade elements: 3 kursbetyg not used; the 4 GR ämnesbetyg wait for their pupils' persons export
    assert _q(store, "select status, rows_read, rows_unused, rows_held from load_log") == [("loaded", 7, 3, 4)]
    assert "no export period" in console
    assert _q(store, "select export_from, export_tom from src_grade_exports") == [(None, None)]
    assert main(["build", "--store", str(store)]) == 0
    # nothing loaded yet but held grades: no year can be reported, and the refusal says so
    assert main(["report", "--year", "2015", "--store", str(store), "--out", str(out)]) == 1
    assert "no data for 2015; years that can be reported: inga" in capsys.readouterr().err
    assert not (out / "2015" / "uppfoljning_2015.html").exists()
    # once the persons export holding its pupils arrives, all four grades load
    _example_persons(raw)
    status, _ = _ingest(raw, store, capsys)
    assert status == 0
    grades = _q(store, "select rows_loaded, rows_held from load_log where kind = 'grades' and status = 'loaded'")
    assert grades == [(4, 0)]
    assert main(["build", "--store", str(store)]) == 0
    assert _q(store, "select count(*) from stg_grades") == [(4,)]
    ((year,),) = _q(store, "select max(term_year) from term_grades")
    assert main(["report", "--year", str(year), "--store", str(store), "--out", str(out)]) == 0
    assert (out / str(year) / f"uppfoljning_{year}.html").stat().st_size > 10_000


# --- valid variants: each must load exactly what the hand-written delivery loads -------------


def _retag_elev(folder: Path) -> None:
    path = folder / "betyg_2016-06.xml"
    text = path.read_text(encoding="utf-8")
    # xmlns="" on <elev> puts it and its children in no namespace, as some exporters write it
    text = re.sub(r"<elev id=", '<elev xmlns="" id=', text)
    path.write_text(text, encoding="utf-8")


def _utf16(folder: Path) -> None:
    path = folder / "betyg_2016-06.xml"
    text = path.read_text(encoding="utf-8").replace('encoding="utf-8"', 'encoding="utf-16"')
    path.write_bytes(text.encode("utf-16"))  # with its byte-order mark


def _no_period(folder: Path) -> None:
    for path in folder.glob("betyg_*.xml"):
        text = re.sub(r' from="[^"]*" tom="[^"]*"', "", path.read_text(encoding="utf-8"))
        path.write_text(text, encoding="utf-8")


def _sub(name: str, old: str, new: str, encoding: str = "utf-8") -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        text = (folder / name).read_text(encoding=encoding)
        assert old in text
        (folder / name).write_text(text.replace(old, new), encoding=encoding)

    return apply


VARIANTS: dict[str, Callable[[Path], None]] = {
    "export_period_in_basic_iso_form": _sub("betyg_2016-06.xml", 'tom="2016-06-30"', 'tom="20160630"'),
    "elev_with_empty_namespace": _retag_elev,
    "grade_export_in_utf16": _utf16,
    "exports_without_from_and_tom": _no_period,
    "attendance_date_in_basic_form": _sub("attendance.json", '"endDate": "2016-02-29"', '"endDate": "20160229"'),
    "dates_as_iso_datetimes": _sub(
        "attendance.json", '"startDate": "2016-02-01"', '"startDate": "2016-02-01T00:00:00Z"'
    ),
}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, int]:
    """Rows the hand-written delivery loads, by kind."""
    root = tmp_path_factory.mktemp("reference")
    write_inputs(root / "raw", BASE)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PPSS_PSEUDONYM_KEY", "real-inputs-key")
        assert main(["ingest", "--raw", str(root / "raw"), "--store", str(root / "s.duckdb")]) == 0
    return _loaded_by_kind(root / "s.duckdb")


@pytest.mark.parametrize("name", list(VARIANTS))
def test_valid_variants_load_like_the_plain_delivery(name, reference, tmp_path, capsys) -> None:
    write_inputs(tmp_path / "raw", BASE)
    VARIANTS[name](tmp_path / "raw")
    status, _ = _ingest(tmp_path / "raw", tmp_path / "s.duckdb", capsys)
    assert status == 0
    assert _q(tmp_path / "s.duckdb", "select rule, location from quarantine") == []
    assert _loaded_by_kind(tmp_path / "s.duckdb") == reference


def test_basic_iso_export_period_ranks_the_export_as_newest(tmp_path, capsys) -> None:
    write_inputs(tmp_path / "raw", BASE)
    VARIANTS["export_period_in_basic_iso_form"](tmp_path / "raw")
    assert _ingest(tmp_path / "raw", tmp_path / "s.duckdb", capsys)[0] == 0
    tom = _q(tmp_path / "s.duckdb", "select max(export_tom)::varchar from src_grade_exports")
    assert tom == [("2016-06-30",)]


def test_semicolon_inside_the_insatser_list_keeps_every_term(tmp_path, capsys) -> None:
    write_inputs(tmp_path / "raw", BASE)
    _sub("ppss_register.csv", ";Kurator", ";Kurator;SIP", encoding="cp1252")(tmp_path / "raw")
    assert _ingest(tmp_path / "raw", tmp_path / "s.duckdb", capsys)[0] == 0
    assert _q(tmp_path / "s.duckdb", "select interventions from src_register") == [(["Kurator", "SIP"],)]


HEADER = ["Personnummer", "Program", "Stadsdel", "Skolenhetskod", "Inskriven", "Utskriven", "Urvalsgrund", "Insatser"]


def test_register_rows_on_every_sheet_are_read_and_other_sheets_named(tmp_path, capsys) -> None:
    raw = tmp_path / "raw"
    write_inputs(raw, BASE)
    (raw / "ppss_register.csv").unlink()
    book = xlsxwriter.Workbook(str(raw / "ppss_register.xlsx"))
    first, notes, second = book.add_worksheet("2015"), book.add_worksheet("Anteckningar"), book.add_worksheet("2016")
    first.write_row(0, 0, HEADER)
    first.write_row(1, 0, [civic(1), "PPSS", "Farsta", SCHOOL_A[1], "2015-09-01", "2015-12-20", "Annat", "Mentor"])
    notes.write_row(0, 0, ["Att göra", "Vem"])
    notes.write_row(1, 0, ["Ring skolan", "handläggare"])
    second.write_row(0, 0, [h.upper() for h in HEADER])
    second.write_row(1, 0, [civic(1), "PPSS", "Farsta", SCHOOL_A[1], "2016-01-15", "", "Hög frånvaro", "Kurator"])
    book.add_worksheet("Blad4")  # left empty
    book.close()
    status, console = _ingest(raw, tmp_path / "s.duckdb", capsys)
    assert status == 0
    assert "sheet 'Anteckningar', sheet 'Blad4' of the workbook not read" in console
    rows = _q(tmp_path / "s.duckdb", "select location, start_date::varchar from src_register order by 2")
    assert rows == [("sheet '2015' row 2", "2015-09-01"), ("sheet '2016' row 2", "2016-01-15")]
    assert _q(tmp_path / "s.duckdb", "select rows_read, rows_loaded from load_log where kind = 'register'") == [(2, 2)]


def test_register_sheet_missing_a_column_rejects_the_workbook(tmp_path, capsys) -> None:
    raw = tmp_path / "raw"
    write_inputs(raw, BASE)
    (raw / "ppss_register.csv").unlink()
    book = xlsxwriter.Workbook(str(raw / "ppss_register.xlsx"))
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, HEADER[:-1])
    sheet.write_row(1, 0, [civic(1), "PPSS", "Farsta", SCHOOL_A[1], "2016-01-15", "", "Hög frånvaro"])
    book.close()
    status, console = _ingest(raw, tmp_path / "s.duckdb", capsys)
    assert status == 2
    assert "missing column(s) Insatser" in console


# --- files the load cannot read -------------------------------------------------------------


def test_file_name_that_is_not_utf8_loads_under_a_readable_name(tmp_path, capsys) -> None:
    raw = tmp_path / "raw"
    write_inputs(raw, BASE)
    name = os.fsdecode(b"attendance_m\xe5rs.json")  # "mårs" in Windows-1252
    (raw / "attendance.json").rename(raw / name)
    status, console = _ingest(raw, tmp_path / "s.duckdb", capsys)
    assert status == 0
    assert "attendance_m\\xe5rs.json" in console
    assert _q(tmp_path / "s.duckdb", "select rows_loaded from load_log where path like '%m\\xe5rs.json'") == [(2,)]


def test_unreadable_file_is_rejected_and_the_rest_loads(tmp_path, capsys, monkeypatch) -> None:
    from pipelines.ingest import load as ingest_mod

    raw = tmp_path / "raw"
    write_inputs(raw, BASE)
    real = ingest_mod._sha256

    def no_permission(path: Path) -> str:  # root reads anything, so permissions are simulated
        if path.name == "attendance.json":
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(ingest_mod, "_sha256", no_permission)
    status, console = _ingest(raw, tmp_path / "s.duckdb", capsys)
    assert status == 2
    assert "permission denied" in console
    log = dict(_q(tmp_path / "s.duckdb", "select kind, status from load_log"))
    assert log["attendance"] == "rejected" and log["grades"] == "loaded"


def test_unexpected_failure_in_a_reader_is_a_verdict_not_a_crash(tmp_path, capsys, monkeypatch) -> None:
    from pipelines.ingest.readers import attendance as attendance_mod

    raw = tmp_path / "raw"
    write_inputs(raw, BASE)

    def broken(path, key, on):
        raise ValueError("a reader bug quoting 200003020724")

    monkeypatch.setenv("PPSS_WORKERS", "0")  # read in this process, where the reader is replaced
    monkeypatch.setattr(attendance_mod, "read_attendance", broken)
    status, console = _ingest(raw, tmp_path / "s.duckdb", capsys)
    assert status == 2
    assert "unexpected ValueError" in console and "200003020724" not in console
    assert _q(tmp_path / "s.duckdb", "select count(*) from load_log where status = 'loaded'") == [(6,)]


# --- crash leftovers ------------------------------------------------------------------------


def test_wal_of_a_killed_writer_with_the_same_pid_is_never_replayed(tmp_path, capsys) -> None:
    raw, store = tmp_path / "raw", tmp_path / "s.duckdb"
    write_inputs(raw, BASE)
    assert _ingest(raw, store, capsys)[0] == 0
    grades = _q(store, "select count(*) from src_grades")
    # A writer with this very PID (as in a container) copied the store, wrote rows and was killed:
    # its copy is gone, its WAL is not.
    building = tmp_path / f".s.duckdb.{os.getpid()}.building"
    shutil.copyfile(store, building)
    script = (
        "import duckdb, os, sys; con = duckdb.connect(sys.argv[1]); "
        "con.execute('insert into src_grades (file_id, location) select 999, range::varchar from range(500)'); "
        "os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", script, str(building)], check=True)
    assert Path(str(building) + ".wal").exists()
    building.unlink()
    assert main(["build", "--store", str(store)]) == 0
    assert _q(store, "select count(*) from src_grades") == grades
    assert _q(store, "select count(*) from src_grades where file_id = 999") == [(0,)]
    assert not list(tmp_path.glob(".s.duckdb.*"))


# --- a corrected file and its old copy --------------------------------------------------------


def test_corrected_file_replaces_its_old_copy_elsewhere_in_the_delivery(tmp_path, capsys) -> None:
    raw, store = tmp_path / "raw", tmp_path / "s.duckdb"
    write_inputs(raw, BASE)
    (raw / "backup").mkdir()
    shutil.copyfile(raw / "betyg_2016-06.xml", raw / "backup" / "betyg_2016-06.xml")
    assert _ingest(raw, store, capsys)[0] == 0  # the copy in backup/ loads first, the other is a duplicate
    path = raw / "betyg_2016-06.xml"
    path.write_text(path.read_text(encoding="utf-8").replace("<value>A</value>", "<value>B</value>"), encoding="utf-8")
    assert _ingest(raw, store, capsys)[0] == 0
    current = _q(store, "select path from load_log where kind = 'grades' and status = 'loaded' order by path")
    assert [p.split("raw/")[-1] for (p,) in current] == ["betyg_2016-02.xml", "betyg_2016-06.xml"]
    status, console = _ingest(raw, store, capsys)  # the old copy stays superseded
    assert status == 0 and "an older copy of" in console
    assert _q(store, "select count(*) from load_log where status = 'loaded' and path like '%backup%'") == [(0,)]
    sv = _q(
        store,
        "select grade from src_grades join load_log using (file_id) "
        "where status = 'loaded' and location = '/betyg/elev[1]/ämnesbetyg[1]'",
    )
    assert sv == [("B",)]
