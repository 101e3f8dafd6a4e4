"""Issue 22: what a data steward sees after a delivery of hand-kept and standard-conformant files.

Each case writes the hand-made base delivery (`contract_data.py`), changes one thing, and runs
`ppss ingest`; the verdict must sit at the place the steward opens (Excel's own row number and
the sheet's name, the CSV line, the JSON record) with nothing lost without a word. A last test
puts every case into one delivery and runs `ppss ingest`, `build` and `report` on it.
"""

from __future__ import annotations

import json
import os
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
import xlsxwriter

from pipelines.cli import main

from .contract_data import SCHOOL_A, civic, write_inputs
from .test_bad_inputs import BASE, PERSONAL

HEADER = ["Personnummer", "Program", "Stadsdel", "Skolenhetskod", "Inskriven", "Utskriven", "Urvalsgrund", "Insatser"]


def good_row(n: int = 1) -> list[str]:
    """A register row of base pupil n (1: a girl, 2: a boy), or of a pupil no persons export holds."""
    return [
        civic(n, "M" if n == 2 else "F"),
        "PPSS",
        "Farsta",
        SCHOOL_A[1],
        "2016-01-15",
        "",
        "Hög frånvaro",
        "Kurator",
    ]


def bad_check_digit(n: int) -> str:
    number = civic(n)
    return number[:-1] + str((int(number[-1]) + 1) % 10)


def workbook(name: str, build: Callable[[xlsxwriter.Workbook], None]) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        (folder / "ppss_register.csv").unlink()
        book = xlsxwriter.Workbook(str(folder / name))
        build(book)
        book.close()

    return apply


def titled_sheet(book: xlsxwriter.Workbook) -> None:
    """A title on row 1, a blank row 2, the table from B3, a hidden row 5 and a bad pupil on row 6."""
    sheet = book.add_worksheet("Inskrivna")
    sheet.write("A1", "PPSS-registret, Farsta")
    sheet.write_row(2, 1, HEADER)
    sheet.write_row(3, 1, good_row(1))
    sheet.write_row(4, 1, good_row(2))
    sheet.set_row(4, None, None, {"hidden": True})
    sheet.write_row(5, 1, [bad_check_digit(3), *good_row(3)[1:]])
    notes = book.add_worksheet("Att göra")
    notes.write_row(0, 0, ["Ring skolan", "måndag"])


def error_cell(book: xlsxwriter.Workbook) -> None:
    sheet = book.add_worksheet("Inskrivna")
    sheet.write_row(0, 0, HEADER)
    sheet.write_row(1, 0, good_row(1))
    sheet.write_row(2, 0, good_row(2))
    sheet.write_formula(2, 3, "=VLOOKUP(A3,Skolor!A:B,2,FALSE)", None, "#N/A")


def two_sheets(book: xlsxwriter.Workbook) -> None:
    for name, rows in (("2015", [good_row(1)]), ("2016", [good_row(2), [bad_check_digit(3), *good_row(3)[1:]]])):
        sheet = book.add_worksheet(name)
        sheet.write_row(0, 0, HEADER)
        for r, row in enumerate(rows, start=1):
            sheet.write_row(r, 0, row)


def duplicate_header(book: xlsxwriter.Workbook) -> None:
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, [*HEADER, "Insatser"])
    sheet.write_row(1, 0, [*good_row(1), "SIP"])


def merged_header(book: xlsxwriter.Workbook) -> None:
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, HEADER[:-1])
    sheet.merge_range(0, 7, 0, 8, "Insatser")
    sheet.write_row(1, 0, [*good_row(1), "SIP"])


def csv_text(name: str, text: str) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        (folder / "ppss_register.csv").unlink()
        (folder / name).write_bytes(text.encode("utf-8"))

    return apply


def register_lines(*rows: list[str]) -> str:
    return "".join(";".join(r) + "\r\n" for r in rows)


def edit_persons(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        doc = json.loads((folder / "persons.json").read_text(encoding="utf-8"))
        change(doc)
        (folder / "persons.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")

    return apply


def nfd_marking(doc: dict) -> None:
    doc["data"][1]["securityMarking"] = unicodedata.normalize("NFD", " Skyddad  folkbokföring ")


def school_type(code: str) -> Callable[[dict], None]:
    def change(doc: dict) -> None:
        doc["data"][1]["enrolments"].append(
            {"enroledAt": {"id": SCHOOL_A[0]}, "schoolType": code, "startDate": "2016-08-15"}
        )

    return change


def personal_file_name(folder: Path) -> None:
    text = (folder / "ppss_register.csv").read_bytes()
    (folder / "ppss_register.csv").unlink()
    (folder / f"ppss_rättelse_{civic(7)}.csv").write_bytes(text)


@dataclass
class Case:
    name: str
    change: Callable[[Path], None]
    file: str  # the end of the file name the verdict is about
    status: str  # load_log.status of that file
    quarantine: set[tuple[str, str, str]]  # (location, column, rule) expected for that file
    note: str = ""  # a phrase the load log's message holds
    rule: str = ""  # the rule of a rejected file


CASES = [
    Case(
        "excel_title_rows_table_in_column_b_hidden_row",
        workbook("ppss_register.xlsx", titled_sheet),
        "ppss_register.xlsx",
        "loaded",
        {("sheet 'Inskrivna' row 6", "Personnummer", "civic_no_check_digit")},
        note="row(s) 5 are hidden in Excel",
    ),
    Case(
        "excel_error_cell",
        workbook("ppss_register.xlsx", error_cell),
        "ppss_register.xlsx",
        "loaded",
        {("sheet 'Inskrivna' row 3", "Skolenhetskod", "excel_error")},
    ),
    Case(
        "excel_several_sheets",
        workbook("ppss_register.xlsx", two_sheets),
        "ppss_register.xlsx",
        "loaded",
        {("sheet '2016' row 3", "Personnummer", "civic_no_check_digit")},
    ),
    Case(
        "excel_duplicate_header",
        workbook("ppss_register.xlsx", duplicate_header),
        "ppss_register.xlsx",
        "rejected",
        set(),
        note="columns H and I are both headed Insatser",
        rule="header_duplicate",
    ),
    Case(
        "excel_merged_header",
        workbook("ppss_register.xlsx", merged_header),
        "ppss_register.xlsx",
        "rejected",
        set(),
        note="column I has values in 1 row(s) but no name",
        rule="header_missing",
    ),
    Case(
        "csv_sep_hint_and_title",
        csv_text(
            "ppss_register.csv",
            "sep=;\r\nPPSS-registret\r\n" + register_lines(HEADER, good_row(1), [bad_check_digit(3), *good_row(3)[1:]]),
        ),
        "ppss_register.csv",
        "loaded",
        {("row 5", "Personnummer", "civic_no_check_digit")},
        note="line(s) 1–2 above the header row",
    ),
    Case(
        "csv_comma_sep_hint",
        csv_text("ppss_register.csv", "sep=,\r\n" + register_lines(HEADER, good_row(1)).replace(";", ",")),
        "ppss_register.csv",
        "rejected",
        set(),
        note="line 1 of the file is Excel's separator hint 'sep=,'",
        rule="csv_separator",
    ),
    Case(
        "csv_unnamed_column_with_values",
        csv_text("ppss_register.csv", register_lines([*HEADER, ""], [*good_row(1), "ring mamma"])),
        "ppss_register.csv",
        "rejected",
        set(),
        note="column 9 (from the left) has values",
        rule="header_missing",
    ),
    Case(
        "security_marking_decomposed_unicode",
        edit_persons(nfd_marking),
        "persons.json",
        "loaded",
        set(),
    ),
    Case(
        "blank_line_before_xml_declaration",
        lambda f: (f / "betyg_2016-06.xml").write_bytes(b"\r\n\n" + (f / "betyg_2016-06.xml").read_bytes()),
        "betyg_2016-06.xml",
        "loaded",
        set(),
        note="blank line(s) before the XML declaration skipped",
    ),
    Case("school_type_komvux", edit_persons(school_type("KOMVUX")), "persons.json", "loaded", set()),
    Case(
        "school_type_not_in_ss12000",
        edit_persons(school_type("ABCX")),
        "persons.json",
        "loaded",
        set(),
        note="1 enrolment(s) in a school type SS 12000 does not list (ABCX) not used",
    ),
]


@pytest.fixture(autouse=True)
def key(monkeypatch) -> None:
    monkeypatch.setenv("PPSS_PSEUDONYM_KEY", "steward-key")


def _q(store: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(store), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _ingest(folder: Path, store: Path, capsys) -> tuple[int, str]:
    status = main(["ingest", "--raw", str(folder), "--store", str(store)])
    out = capsys.readouterr()
    assert "Traceback" not in out.err and "internal error" not in out.err, out.err
    assert not PERSONAL.search(out.out + out.err), "personal data on the console"
    for path, read, loaded, quarantined, unused, message in _q(
        store, "select path, rows_read, rows_loaded, rows_quarantined, rows_unused, message from load_log"
    ):
        assert read == loaded + quarantined + unused, f"{path} does not reconcile"
        assert not PERSONAL.search(path + (message or "")), "personal data in load_log"
    for row in _q(store, "select path, location, message from quarantine"):
        assert not PERSONAL.search(" ".join(v or "" for v in row)), "personal data in quarantine"
    return status, out.out


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_steward_sees_the_verdict_where_the_row_is(case: Case, tmp_path, capsys) -> None:
    raw, store = tmp_path / "raw", tmp_path / "s.duckdb"
    write_inputs(raw, BASE)
    case.change(raw)
    status, _ = _ingest(raw, store, capsys)
    assert status == (2 if case.status == "rejected" else 0)
    log = [r for r in _q(store, "select path, status, message from load_log") if r[0].endswith(case.file)]
    assert [r[1] for r in log] == [case.status], log
    assert case.note in log[0][2], log[0][2]
    found = _q(store, "select path, location, column_name, rule from quarantine")
    mine = {(loc, col, rule) for path, loc, col, rule in found if path.endswith(case.file)}
    if case.status == "rejected":
        assert mine == {("whole file", "", case.rule)} or {m[2] for m in mine} == {case.rule}, found
    else:
        assert mine == case.quarantine, found


def _status(store: Path, capsys) -> str:
    assert main(["status", "--store", str(store)]) == 0
    return capsys.readouterr().out


def test_a_bad_delivery_through_ingest_build_and_report(tmp_path, capsys) -> None:
    """Every case above in one delivery (each register case as its own file), with a folder and a
    FIFO named like inputs and a file name holding an identity number; then the rejected files
    leave the folder. Each verdict holds in the whole delivery, `ppss status` and `ppss report`
    agree on the store before and after, and nothing personal surfaces anywhere."""
    import shutil

    from pipelines.config import paths
    from pipelines.report.render import ReportRefused, check_store

    raw, store, out = tmp_path / "raw", tmp_path / "s.duckdb", tmp_path / "reports"
    write_inputs(raw, BASE)
    names: dict[str, str] = {}  # case -> its file's name in the delivery
    for case in CASES:
        if case.file.startswith("ppss_"):  # a register of its own, written apart and copied in
            scratch = tmp_path / case.name
            write_inputs(scratch, BASE)
            case.change(scratch)
            names[case.name] = f"ppss_{case.name}{Path(case.file).suffix}"
            shutil.copyfile(scratch / case.file, raw / names[case.name])
        else:  # an edit of the base delivery's persons or grades
            case.change(raw)
            names[case.name] = case.file
    (raw / f"ppss_rättelse_{civic(7)}.csv").write_bytes(
        register_lines(HEADER, [bad_check_digit(4), *good_row(4)[1:]]).encode("utf-8")
    )
    (raw / "persons_2.json").write_text("<!DOCTYPE html><html><body>503</body></html>", encoding="utf-8")
    (raw / "attendance_old.json").mkdir()
    os.mkfifo(raw / "attendance_pipe.json")

    status, console = _ingest(raw, store, capsys)
    assert status == 2
    assert "named like an input, but a folder" in console and "a named pipe" in console
    assert civic(7) not in console and "ppss_rättelse_pnr-" in console
    log = _q(store, "select path, status, message from load_log")
    quarantine = _q(store, "select path, location, column_name, rule from quarantine")
    for case in CASES:
        mine = [r for r in log if Path(r[0]).name == names[case.name]]
        assert [r[1] for r in mine] == [case.status] and case.note in mine[0][2], (case.name, mine)
        found = {(loc, col, rule) for p, loc, col, rule in quarantine if Path(p).name == names[case.name]}
        assert case.quarantine <= found, (case.name, found)
    assert any("ppss_rättelse_pnr-" in p and loc == "row 2" for p, loc, _, _ in quarantine), quarantine
    assert main(["build", "--store", str(store)]) == 0
    capsys.readouterr()
    shown = _status(store, capsys)
    assert "rejected" in shown and "persons_2.json" in shown
    with pytest.raises(ReportRefused):
        check_store(store, allow_rejected=False)

    rejected = ["persons_2.json"] + [names[c.name] for c in CASES if c.status == "rejected"]
    for name in rejected:
        (raw / name).unlink()
    status, console = _ingest(raw, store, capsys)
    assert status == 0 and "removed" in console
    gone = _q(store, "select path from load_log where status = 'removed'")
    assert sorted(Path(p).name for (p,) in gone) == sorted(rejected)
    assert main(["build", "--store", str(store)]) == 0
    capsys.readouterr()
    shown = _status(store, capsys)
    assert "rejected" not in shown.split("next:")[0].split("\n", 3)[-1], shown
    assert main(["report", "--year", "2016", "--store", str(store), "--out", str(out)]) == 0
    console = capsys.readouterr()
    assert "Traceback" not in console.err
    texts = {"console": console.out + console.err + shown}
    for path in [*out.rglob("*"), *(paths().reports / "validation").rglob("*")]:
        if path.is_file() and path.suffix in (".html", ".csv", ".json", ".ipynb", ".txt"):
            texts[str(path)] = path.read_text(encoding="utf-8", errors="replace")
    for row in _q(store, "select path, message from load_log union all select path, message from quarantine"):
        texts[f"store {row[0]}"] = " ".join(v or "" for v in row)
    for where, text in texts.items():
        assert civic(7) not in text and civic(7)[2:] not in text, f"the file name's identity number in {where}"


def test_command_line_mistakes_get_one_clear_line(tmp_path, capsys, monkeypatch) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.delenv("PPSS_PSEUDONYM_KEY")
    mistakes = {
        ("ingest", "--raw", str(empty), "--store", str(tmp_path / "s.duckdb")): "no input files in",
        ("report", "--yaer", "2016"): "unknown option --yaer; did you mean --year?",
        ("reprot", "--year", "2016"): "unknown command reprot; did you mean report?",
        ("status", "--store", str(tmp_path)): "is a folder; give the store's file",
        ("ingest", "--raw", str(tmp_path / "nowhere")): "does not exist",
        ("report",): "the following arguments are required: --year",
    }
    for argv, said in mistakes.items():
        assert main(list(argv)) == 1, argv
        err = capsys.readouterr().err
        assert said in err, err
        assert len(err.strip().splitlines()) == 1 and "internal error" not in err and "key" not in err.lower(), err


def test_district_names_are_matched_without_regard_to_case(tmp_path, capsys) -> None:
    from pipelines.cli import _resolve_districts
    from pipelines.report.render import ReportRefused

    raw, store = tmp_path / "raw", tmp_path / "s.duckdb"
    write_inputs(raw, BASE)
    assert _ingest(raw, store, capsys)[0] == 0
    assert main(["build", "--store", str(store)]) == 0
    assert _resolve_districts(store, ["farsta", " FARSTA "]) == ["Farsta", "Farsta"]
    with pytest.raises(ReportRefused, match="unknown district 'Farstaa'; did you mean Farsta"):
        _resolve_districts(store, ["Farstaa"])


def _open(browser, url: str) -> tuple[object, list[str]]:
    page = browser.new_page()
    problems: list[str] = []
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.on("response", lambda r: problems.append(f"missing: {r.url}") if r.status >= 400 else None)
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.goto(url)
    page.wait_for_load_state("load")
    return page, problems


def _index_rows(page) -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    for tr in page.locator("table tbody tr").all():
        cells = [c.inner_text().strip() for c in tr.locator("td").all()]
        rows.setdefault(cells[0], cells)  # the first table (current files) comes first
    return rows


def test_data_docs_in_chromium_after_a_rejected_file_and_an_incremental_ingest(tmp_path, capsys, browser) -> None:
    from pipelines.config import paths

    raw, store = tmp_path / "raw", tmp_path / "s.duckdb"
    write_inputs(raw, BASE)
    edit_persons(lambda d: d["data"][0]["civicNo"].update(value=bad_check_digit(1)))(raw)
    (raw / "attendance_2.json").write_text("<!DOCTYPE html><html><body>503</body></html>", encoding="utf-8")
    assert _ingest(raw, store, capsys)[0] == 2
    index = paths().reports / "validation" / "index.html"

    def check(expect_rejected: bool) -> dict[str, list[str]]:
        page, problems = _open(browser, index.as_uri())
        try:
            assert page.locator("html").get_attribute("lang") == "sv"
            body = page.locator("body").inner_text()
            rows = _index_rows(page)
            log = _q(
                store, "select path, status, rows_read, rows_loaded, rows_invalid, rows_held, rows_unused from load_log"
            )
            current = {r[0]: r for r in log if r[1] in ("loaded", "rejected")}
            for path, (_, _, read, loaded, invalid, held, unused) in current.items():
                cells = rows[path]  # every current file, with the counts `ppss status` shows
                assert [c.replace("\u202f", "").replace(",", "") for c in cells[3:8]] == [
                    str(n) for n in (read, loaded, invalid, held, unused)
                ], cells
            named = {Path(p).name: cells for p, cells in rows.items()}
            assert ("avvisad" in named["attendance_2.json"][2]) == expect_rejected
            assert "civic_no_check_digit (1)" in named["persons.json"][9]
            link = page.locator("a[href*='validations/persons']").first
            link.click()
            page.wait_for_load_state("load")
            gx = page.locator("body").inner_text()
            assert "Regel (som i ppss status)" in gx and "civic_no_check_digit" in gx
            assert "Show more info" not in gx and "Batch Markers" not in gx and "PandasDataFrame" not in gx
            assert not page.locator("a[data-toggle], button[data-toggle]").count(), "a control that does nothing"
            assert not problems, problems
            return {"body": body}
        finally:
            page.close()

    raw_before = paths().reports / "validation"
    assert raw_before.exists()
    first = check(expect_rejected=True)
    assert "1 fil(er) avvisade" in first["body"]
    # An incremental ingest: the rejected file leaves, attendance is corrected; the index keeps the
    # files validated before, lists the removed and the superseded versions, and marks the run.
    (raw / "attendance_2.json").unlink()
    (raw / "attendance.json").write_text(
        (raw / "attendance.json").read_text(encoding="utf-8").replace("6000", "6001"), encoding="utf-8"
    )
    assert _ingest(raw, store, capsys)[0] == 0
    second = check(expect_rejected=False)
    assert "Tidigare versioner och borttagna filer" in second["body"]
    assert "borttagen ur leveransen" in second["body"] and "ersatt av en nyare version" in second["body"]
    assert "senaste körningen" in second["body"]


def test_a_personal_name_gets_one_stable_keyed_pseudonym() -> None:
    from pipelines.rules.identity import looks_personal, pseudonymised_name

    number, guid = civic(7), "8f0c7f4e-1c7b-4c39-9a53-4a4d2b1e0001"
    for name in (f"ppss_rättelse_{number}.csv", f"{guid}/persons.json", f"ppss_{number[2:8]}-{number[8:]}.csv"):
        shown = pseudonymised_name(b"k", name)
        assert not looks_personal(shown) and shown == pseudonymised_name(b"k", name), shown
        assert shown != pseudonymised_name(b"other key", name)  # keyed: the number cannot be recomputed
    assert pseudonymised_name(b"k", "betyg_export_2015-06-30.xml") == "betyg_export_2015-06-30.xml"
