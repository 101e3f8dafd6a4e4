"""A corpus of bad inputs, each with its exact verdict, and unusual inputs that must load.

Every case starts from the same small set of files written by hand against the contract
(`contract_data.py`: pupil 1 and pupil 2, with grades, attendance and a register row for
pupil 1), changes one thing, ingests through the command line and checks: the exit
status, that the verdict names the rule at the expected place (file or row), and that
every file's counts reconcile (read = loaded + quarantined + unused).
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
import xlsxwriter

from pipelines.cli import main

from .contract_data import SCHOOL_A, Case, attendance, civic, grade_xml, luhn_digit, person_guid, write_inputs

BASE = [
    Case(
        "one",
        grades="SV=A EN=B MA=C",
        attendance=[attendance("2016-02-01", "2016-02-29", 6000, 300, 300)],
        register={"start": "2016-01-15"},
    ),
    Case("two", grades="SV=E EN=E MA=E", gender="M", attendance=[attendance("2016-02-01", "2016-02-29", 6000, 0, 0)]),
]
NS = "http://pingpong.se/schemas/grades/v1.1"


def edit_json(name: str, change: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        doc = json.loads((folder / name).read_text(encoding="utf-8"))
        change(doc)
        (folder / name).write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")

    return apply


def replace(name: str, old: str, new: str, encoding: str = "utf-8") -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        text = (folder / name).read_text(encoding=encoding)
        assert old in text, f"{old!r} not in {name}"
        (folder / name).write_text(text.replace(old, new, 1), encoding=encoding)

    return apply


def write(name: str, content: str | bytes) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        data = content.encode() if isinstance(content, str) else content
        (folder / name).write_bytes(data)

    return apply


def transform(name: str, change: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        (folder / name).write_bytes(change((folder / name).read_bytes()))

    return apply


def text_json(name: str, old: str, new: str) -> Callable[[Path], None]:
    """Replace raw JSON text (for values json.dumps cannot write, such as a 5,000-digit number)."""
    return replace(name, old, new)


def link_to_nowhere(name: str) -> Callable[[Path], None]:
    return lambda folder: os.symlink(folder / "moved-away.json", folder / name)


def non_utf8_name(folder: Path) -> None:
    data = {"data": [json.loads((folder / "attendance.json").read_text())["data"][0]], "pageToken": None}
    data["data"][0]["startDate"], data["data"][0]["endDate"] = "2016-03-01", "2016-03-31"
    name = os.fsdecode(b"attendance_m\xe5rs.json")  # "mårs" in Windows-1252: not UTF-8
    (folder / name).write_text(json.dumps(data), encoding="utf-8")


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE betyg [<!ENTITY a "aaaaaaaaaa">'
    + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9))
    + f']><betyg xmlns="{NS}" tom="2016-06-30"><elev id="{{00000000-0000-4000-8000-000000000001}}">&j;</elev></betyg>'
)
XXE = (
    '<?xml version="1.0"?><!DOCTYPE betyg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    f'<betyg xmlns="{NS}" tom="2016-06-30"><elev id="{{00000000-0000-4000-8000-000000000001}}">&x;</elev></betyg>'
)


def add_register_row(row: str) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        path = folder / "ppss_register.csv"
        path.write_bytes(path.read_bytes() + (row + "\r\n").encode("cp1252"))

    return apply


def nul_far_down(folder: Path) -> None:
    """A NUL byte in a row beyond the file's first bytes, where the file still looks like text."""
    for _ in range(80):
        add_register_row(";;;;;;;")(folder)
    add_register_row(f"{civic(20)};PPSS;Far\x00sta;{SCHOOL_A[1]};2016-03-01;;Annat;SIP")(folder)


def add_elev(xml: str) -> Callable[[Path], None]:
    return replace("betyg_2016-06.xml", "</betyg>", xml + "</betyg>")


def person(i: int) -> Callable[[dict], dict]:
    return lambda doc: doc["data"][i]


def set_in(path: list, value) -> Callable[[dict], None]:
    def change(doc: dict) -> None:
        target = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


@dataclass
class Bad:
    name: str
    change: Callable[[Path], None]
    file: str  # the file the verdict is about
    rule: str
    location: str | None  # None: the whole file is rejected
    exit: int = 0
    also: int = 1  # quarantine rows expected with this rule


PIPE = "|"
OPEN_ROW = f"{civic(1)};PPSS;Farsta;{SCHOOL_A[1]};2016-03-01;;Hög frånvaro;Kurator"
CORPUS = [
    # persons: structure
    Bad(
        "persons_html_page",
        write("persons.json", "<!DOCTYPE html><html><body>503</body></html>"),
        "persons.json",
        "file_format",
        None,
        exit=2,
    ),
    Bad(
        "persons_cut_off",
        write("persons.json", '{"data": [{"id": "00000000-0000-4000-8000-000000000001", "civ'),
        "persons.json",
        "file_format",
        None,
        exit=2,
    ),
    Bad("persons_wrong_shape", write("persons.json", '{"items": []}'), "persons.json", "file_shape", None, exit=2),
    Bad("persons_empty_file", write("persons.json", ""), "persons.json", "file_format", None, exit=2),
    # persons: values and identity
    Bad(
        "civic_no_check_digit",
        edit_json(
            "persons.json",
            lambda d: set_in(["data", 0, "civicNo", "value"], civic(1)[:-1] + str((int(civic(1)[-1]) + 1) % 10))(d),
        ),
        "persons.json",
        "civic_no_check_digit",
        "data[0]",
    ),
    Bad(
        "civic_no_date",
        edit_json(
            "persons.json",  # 30 February, with a valid check digit
            lambda d: set_in(["data", 1, "civicNo", "value"], "20000230-123" + luhn_digit("000230123"))(d),
        ),
        "persons.json",
        "civic_no_date",
        "data[1]",
    ),
    Bad(
        "civic_no_missing",
        edit_json("persons.json", lambda d: d["data"][1].pop("civicNo")),
        "persons.json",
        "civic_no_missing",
        "data[1]",
    ),
    Bad(
        "person_id_malformed",
        edit_json("persons.json", lambda d: set_in(["data", 1, "id"], "12345")(d)),
        "persons.json",
        "person_id_format",
        "data[1]",
    ),
    Bad(
        "security_marking_unknown",
        edit_json("persons.json", lambda d: set_in(["data", 0, "securityMarking"], "Hemlig")(d)),
        "persons.json",
        "security_marking_unknown",
        "data[0]",
    ),
    Bad(
        "school_year_out_of_range",
        edit_json("persons.json", lambda d: set_in(["data", 0, "enrolments", 1, "schoolYear"], 11)(d)),
        "persons.json",
        "school_year_range",
        "data[0].enrolments[1]",
    ),
    Bad(
        "enrolment_ends_before_start",
        edit_json("persons.json", lambda d: set_in(["data", 1, "enrolments", 0, "endDate"], "2014-01-01")(d)),
        "persons.json",
        "dates_out_of_order",
        "data[1].enrolments[0]",
    ),
    Bad(
        "age_does_not_fit_school_year",
        edit_json("persons.json", lambda d: set_in(["data", 1, "enrolments", 1, "schoolYear"], 3)(d)),
        "persons.json",
        "age_school_year_mismatch",
        "data[1].enrolments[1]",
    ),
    Bad(
        "enrolment_school_unknown",
        edit_json(
            "persons.json",
            lambda d: set_in(["data", 0, "enrolments", 0, "enroledAt", "id"], "99999999-0000-4000-8000-000000000000")(
                d
            ),
        ),
        "persons.json",
        "unknown_school_unit",
        "data[0].enrolments[0]",
    ),
    Bad(
        "same_number_two_ids",
        edit_json("persons.json", lambda d: set_in(["data", 1, "civicNo", "value"], civic(1, "F"))(d)),
        "persons.json",
        "identity_conflict_number",
        "data[1]",
        also=2,
    ),
    # school units
    Bad(
        "school_unit_code_short",
        edit_json("organisations.json", lambda d: set_in(["data", 0, "schoolUnitCode"], "1234567")(d)),
        "organisations.json",
        "school_unit_code_format",
        "data[0]",
    ),
    Bad(
        "skolenheter_missing_column",
        write("skolenheter.csv", "skolenhetskod;skolnamn;huvudman\n12345678;A;kommunal\n"),
        "skolenheter.csv",
        "required_columns",
        None,
        exit=2,
    ),
    Bad(
        "huvudman_unknown",
        replace("skolenheter.csv", "Farsta;kommunal", "Farsta;privat"),
        "skolenheter.csv",
        "huvudman_unknown",
        "row 2",
    ),
    Bad(
        "school_unit_listed_twice",
        replace("skolenheter.csv", "23456789;", "12345678;"),
        "skolenheter.csv",
        "school_unit_duplicate",
        "row 3",
        also=2,
    ),
    # grades
    Bad(
        "grades_wrong_namespace",
        replace("betyg_2016-06.xml", NS, "http://example.org/betyg"),
        "betyg_2016-06.xml",
        "file_format",
        None,
        exit=2,
    ),
    Bad(
        "grades_cut_off",
        lambda f: (f / "betyg_2016-06.xml").write_bytes((f / "betyg_2016-06.xml").read_bytes()[:-40]),
        "betyg_2016-06.xml",
        "file_format",
        None,
        exit=2,
    ),
    Bad(
        "grade_of_another_scale",
        replace("betyg_2016-06.xml", "<value>A</value>", "<value>VG</value>"),
        "betyg_2016-06.xml",
        "grade_value",
        "/betyg/elev[1]/ämnesbetyg[1]",
    ),
    Bad(
        "grade_value_missing",
        replace("betyg_2016-06.xml", "<value>B</value>", "<value></value>"),
        "betyg_2016-06.xml",
        "grade_missing",
        "/betyg/elev[1]/ämnesbetyg[2]",
    ),
    Bad(
        "subject_unknown",
        replace("betyg_2016-06.xml", "<ämnesförkortning>MA<", "<ämnesförkortning>XYZ<"),
        "betyg_2016-06.xml",
        "subject_code_unknown",
        "/betyg/elev[1]/ämnesbetyg[3]",
    ),
    Bad(
        "language_missing",
        add_elev(f'<elev id="{{{person_guid(2)}}}">{grade_xml("SV=E EN=E MA=E M2=C")}</elev>'),
        "betyg_2016-06.xml",
        "language_missing",
        "/betyg/elev[3]/ämnesbetyg[4]",
    ),
    Bad(
        "language_code_invalid",
        add_elev(f'<elev id="{{{person_guid(2)}}}">{grade_xml("SV=E EN=E MA=E M2/TYSKA=C")}</elev>'),
        "betyg_2016-06.xml",
        "language_code",
        "/betyg/elev[3]/ämnesbetyg[4]",
    ),
    Bad(
        "grade_date_impossible",
        replace("betyg_2016-06.xml", "<datum>2016-06-10</datum>", "<datum>2016-02-30</datum>"),
        "betyg_2016-06.xml",
        "date_invalid",
        "/betyg/elev[1]/ämnesbetyg[1]",
    ),
    Bad(
        "term_type_unknown",
        replace("betyg_2016-06.xml", "<typ>VT</typ>", "<typ>ST</typ>"),
        "betyg_2016-06.xml",
        "term_value",
        "/betyg/elev[1]/ämnesbetyg[1]",
    ),
    Bad(
        "pupil_id_malformed",
        replace("betyg_2016-06.xml", f'<elev id="{{{person_guid(2).upper()}}}">', '<elev id="{not-a-guid}">'),
        "betyg_2016-06.xml",
        "pupil_id_format",
        "/betyg/elev[2]/ämnesbetyg[1]",
        also=3,
    ),
    Bad(
        "school_form_missing",
        replace("betyg_2016-06.xml", "<skolform>GR</skolform>", ""),
        "betyg_2016-06.xml",
        "school_form_missing",
        "/betyg/elev[1]/ämnesbetyg[1]",
    ),
    Bad(
        "grade_of_unknown_pupil",
        add_elev(f'<elev id="{{{person_guid(9)}}}">{grade_xml("SV=E")}</elev>'),
        "betyg_2016-06.xml",
        "unknown_pupil",
        "/betyg/elev[3]/ämnesbetyg[1]",
    ),
    # attendance
    Bad(
        "attendance_html_page",
        write("attendance.json", "<html><head><title>Login</title></head></html>"),
        "attendance.json",
        "file_format",
        None,
        exit=2,
    ),
    Bad(
        "minutes_negative",
        edit_json("attendance.json", lambda d: set_in(["data", 1, "validAbsenceSum"], -5)(d)),
        "attendance.json",
        "minutes_invalid",
        "data[1]",
    ),
    Bad(
        "minutes_fractional",
        edit_json("attendance.json", lambda d: set_in(["data", 0, "attendanceSum"], 5399.5)(d)),
        "attendance.json",
        "minutes_invalid",
        "data[0]",
    ),
    Bad(
        "absence_exceeds_offered",
        edit_json("attendance.json", lambda d: set_in(["data", 0, "invalidAbsenceSum"], 6000)(d)),
        "attendance.json",
        "absence_exceeds_offered",
        "data[0]",
    ),
    Bad(
        "offered_missing",
        edit_json("attendance.json", lambda d: d["data"][1].pop("offeredSum")),
        "attendance.json",
        "offered_missing",
        "data[1]",
    ),
    Bad(
        "period_ends_before_start",
        edit_json("attendance.json", lambda d: set_in(["data", 0, "endDate"], "2016-01-31")(d)),
        "attendance.json",
        "dates_out_of_order",
        "data[0]",
    ),
    Bad(
        "overlapping_periods",
        edit_json(
            "attendance.json",
            lambda d: d["data"].append(
                {
                    **d["data"][0],
                    "startDate": "2016-02-15",
                    "endDate": "2016-03-15",
                    "offeredSum": 5000,
                    "reportedSum": 5000,
                    "attendanceSum": 4400,
                }
            ),
        ),
        "attendance.json",
        "attendance_overlap",
        "data[0]",
        also=2,
    ),
    Bad(
        "student_unknown",
        edit_json("attendance.json", lambda d: set_in(["data", 1, "student", "id"], person_guid(9))(d)),
        "attendance.json",
        "unknown_student",
        "data[1]",
    ),
    # the register
    Bad(
        "register_civic_no_typo",
        replace("ppss_register.csv", civic(1), civic(1)[:-1] + str((int(civic(1)[-1]) + 5) % 10), encoding="cp1252"),
        "ppss_register.csv",
        "civic_no_check_digit",
        "row 2",
    ),
    Bad(
        "exit_before_entry",
        replace("ppss_register.csv", "2016-01-15;", "2016-01-15;2015-12-01", encoding="cp1252"),
        "ppss_register.csv",
        "exit_before_entry",
        "row 2",
    ),
    Bad(
        "selection_reason_unknown",
        replace("ppss_register.csv", ";Hög frånvaro;", ";Hög frånvaro, skolk;", encoding="cp1252"),
        "ppss_register.csv",
        "selection_reason_unknown",
        "row 2",
    ),
    Bad(
        "intervention_unknown",
        replace("ppss_register.csv", ";Kurator", ";Kurator, Coach", encoding="cp1252"),
        "ppss_register.csv",
        "intervention_unknown",
        "row 2",
    ),
    Bad(
        "programme_unknown",
        replace("ppss_register.csv", ";PPSS;", ";Fritids;", encoding="cp1252"),
        "ppss_register.csv",
        "programme_unknown",
        "row 2",
    ),
    Bad(
        "entry_date_unreadable",
        replace("ppss_register.csv", "2016-01-15", "15/1 2016", encoding="cp1252"),
        "ppss_register.csv",
        "date_invalid",
        "row 2",
    ),
    Bad(
        "school_unit_code_not_digits",
        replace("ppss_register.csv", f";{SCHOOL_A[1]};", ";1234-567;", encoding="cp1252"),
        "ppss_register.csv",
        "school_unit_code_format",
        "row 2",
    ),
    Bad(
        "register_school_unit_unknown",
        replace("ppss_register.csv", f";{SCHOOL_A[1]};", ";87654321;", encoding="cp1252"),
        "ppss_register.csv",
        "unknown_school_unit_code",
        "row 2",
    ),
    Bad("open_twice_in_programme", add_register_row(OPEN_ROW), "ppss_register.csv", "programme_open_twice", "row 2"),
    Bad(
        "register_pupil_not_in_persons",
        add_register_row(f"{civic(20)};PPSS;Farsta;{SCHOOL_A[1]};2016-03-01;;Annat;SIP"),
        "ppss_register.csv",
        "pupil_not_in_persons",
        "row 3",
    ),
    Bad(
        "register_missing_column",
        write("ppss_register.csv", "Pnr;Inskriven\r\n811218-9876;2016-01-01\r\n"),
        "ppss_register.csv",
        "required_columns",
        None,
        exit=2,
    ),
    Bad(
        "register_xlsx_not_a_workbook",
        write("ppss_extra.xlsx", "Personnummer;Inskriven\n"),
        "ppss_extra.xlsx",
        "file_format",
        None,
        exit=2,
    ),
    # --- issue 10: files real exports and real people produce ---
    # a load that cannot crash on input
    Bad(
        "persons_nested_100000_levels",
        write("persons.json", '{"data": [' + "[" * 100_000 + "]" * 100_000 + "]}"),
        "persons.json",
        "file_shape",
        None,
        exit=2,
    ),
    Bad(
        "minutes_with_5000_digits",
        text_json("attendance.json", '"offeredSum": 6000', '"offeredSum": ' + "9" * 5000),
        "attendance.json",
        "minutes_implausible",
        "data[0]",
    ),
    Bad(
        "minutes_beyond_2_to_the_63",
        text_json("attendance.json", '"offeredSum": 6000', '"offeredSum": 9223372036854775808'),
        "attendance.json",
        "minutes_implausible",
        "data[0]",
    ),
    Bad(
        "minutes_more_than_the_period_has",
        edit_json("attendance.json", lambda d: set_in(["data", 1, "reportedSum"], 29 * 1440 + 1)(d)),
        "attendance.json",
        "minutes_implausible",
        "data[1]",
    ),
    Bad(
        "dangling_link_named_like_an_input",
        link_to_nowhere("attendance_2.json"),
        "attendance_2.json",
        "file_unreadable",
        None,
        exit=2,
    ),
    # structure and format, with messages naming the real cause
    Bad(
        "persons_json_lines",
        write("persons.json", '{"id": 1}\n{"id": 2}\n'),
        "persons.json",
        "file_format",
        None,
        exit=2,
    ),
    Bad(
        "grades_nested_100000_levels",
        write("betyg_2016-06.xml", f'<betyg xmlns="{NS}">' + "<elev>" * 100_000 + "</elev>" * 100_000 + "</betyg>"),
        "betyg_2016-06.xml",
        "file_shape",
        None,
        exit=2,
    ),
    Bad(
        "grades_gzip",
        transform("betyg_2016-06.xml", gzip.compress),
        "betyg_2016-06.xml",
        "file_format",
        None,
        exit=2,
    ),
    Bad(
        "grades_entity_expansion",
        write("betyg_2016-06.xml", BILLION_LAUGHS),
        "betyg_2016-06.xml",
        "xml_dtd",
        None,
        exit=2,
    ),
    Bad("grades_external_entity", write("betyg_2016-06.xml", XXE), "betyg_2016-06.xml", "xml_dtd", None, exit=2),
    Bad(
        "grades_encoding_mismatch",
        transform("betyg_2016-06.xml", lambda b: b.decode("utf-8").encode("cp1252")),
        "betyg_2016-06.xml",
        "encoding",
        None,
        exit=2,
    ),
    Bad(
        "grades_elev_in_another_namespace",
        transform(
            "betyg_2016-06.xml",
            lambda b: b.replace(b"<elev id", b'<x:elev xmlns:x="urn:x" id', 1).replace(b"</elev>", b"</x:elev>", 1),
        ),
        "betyg_2016-06.xml",
        "xml_namespace",
        None,
        exit=2,
    ),
    Bad(
        "grades_period_unreadable",
        replace("betyg_2016-06.xml", 'tom="2016-06-30"', 'tom="30/6 2016"'),
        "betyg_2016-06.xml",
        "export_period",
        None,
        exit=2,
    ),
    # values in the wrong shape are reported as such, not as missing
    Bad(
        "civic_no_as_plain_text",
        edit_json("persons.json", lambda d: set_in(["data", 1, "civicNo"], civic(2))(d)),
        "persons.json",
        "value_shape",
        "data[1]",
    ),
    Bad(
        "student_as_a_list",
        edit_json("attendance.json", lambda d: set_in(["data", 1, "student"], [{"id": person_guid(2)}])(d)),
        "attendance.json",
        "value_shape",
        "data[1]",
    ),
    Bad(
        "enrolment_start_as_an_object",
        edit_json(
            "persons.json", lambda d: set_in(["data", 0, "enrolments", 1, "startDate"], {"date": "2015-08-18"})(d)
        ),
        "persons.json",
        "value_shape",
        "data[0].enrolments[1]",
    ),
    # privacy: unknown protection is not "Ingen"
    Bad(
        "security_marking_missing",
        edit_json("persons.json", lambda d: d["data"][0].pop("securityMarking")),
        "persons.json",
        "security_marking_missing",
        "data[0]",
    ),
    # plausibility of dates
    Bad(
        "attendance_open_ended",
        edit_json("attendance.json", lambda d: set_in(["data", 0, "endDate"], "9999-12-31")(d)),
        "attendance.json",
        "date_implausible",
        "data[0]",
    ),
    Bad(
        "attendance_from_year_1",
        edit_json("attendance.json", lambda d: set_in(["data", 1, "startDate"], "0001-01-01")(d)),
        "attendance.json",
        "date_implausible",
        "data[1]",
    ),
    Bad(
        "grade_dated_in_the_future",
        replace(
            "betyg_2016-06.xml",
            "<datum>2016-06-10</datum><prövning>false</prövning><skola>{8F0C7F4E-1C7B-4C39-9A53-4A4D2B1E0001}"
            "</skola><skolform>GR</skolform><ämnesförkortning>SV</ämnesförkortning><termin><typ>VT</typ><år>2016",
            "<datum>2031-03-10</datum><prövning>false</prövning><skola>{8F0C7F4E-1C7B-4C39-9A53-4A4D2B1E0001}"
            "</skola><skolform>GR</skolform><ämnesförkortning>SV</ämnesförkortning><termin><typ>VT</typ><år>2031",
        ),
        "betyg_2016-06.xml",
        "date_in_future",
        "/betyg/elev[1]/ämnesbetyg[1]",
    ),
    Bad(
        "register_exit_far_in_the_future",
        replace("ppss_register.csv", "2016-01-15;", "2016-01-15;9999-12-31", encoding="cp1252"),
        "ppss_register.csv",
        "date_implausible",
        "row 2",
    ),
    Bad(
        "enrolment_open_ended",
        edit_json("persons.json", lambda d: set_in(["data", 1, "enrolments", 1, "endDate"], "9999-12-31")(d)),
        "persons.json",
        "date_implausible",
        "data[1].enrolments[1]",
    ),
    # the register as people keep it
    Bad(
        "register_stray_quote",
        replace("ppss_register.csv", ";Farsta;", ';"Farsta;', encoding="cp1252"),
        "ppss_register.csv",
        "csv_quote",
        "row 2",
    ),
    Bad(
        "register_nul_bytes_in_a_row",
        nul_far_down,
        "ppss_register.csv",
        "csv_control",
        "row 83",
    ),
    Bad(
        "register_without_header_row",
        transform("ppss_register.csv", lambda b: b.split(b"\r\n", 1)[1]),
        "ppss_register.csv",
        "required_columns",
        None,
        exit=2,
    ),
    Bad(
        "register_without_insatser_column",
        transform("ppss_register.csv", lambda b: b.replace(b";Insatser", b"").replace(b";Kurator", b"")),
        "ppss_register.csv",
        "required_columns",
        None,
        exit=2,
    ),
    Bad(
        "register_mixed_encodings",
        lambda f: (f / "ppss_register.csv").write_bytes(
            (f / "ppss_register.csv").read_bytes().decode("cp1252").encode("utf-8")
            + f"{civic(20)};PPSS;Spånga-Tensta;{SCHOOL_A[1]};2016-03-01;;Annat;SIP\r\n".encode("cp1252")
        ),
        "ppss_register.csv",
        "encoding_mixed",
        None,
        exit=2,
    ),
    Bad(
        "register_too_many_cells_in_a_text_column",
        transform(
            "ppss_register.csv",
            lambda b: b.replace(b";Insatser", b";Insatser;Kommentar").replace(b";Kurator", b";Kurator;x;y"),
        ),
        "ppss_register.csv",
        "csv_fields",
        "row 2",
    ),
]


@pytest.fixture(autouse=True)
def key(monkeypatch) -> None:
    monkeypatch.setenv("PPSS_PSEUDONYM_KEY", "corpus-key")


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(pristine files, the folder cases change, a store with the pristine files loaded)."""
    root = tmp_path_factory.mktemp("corpus")
    pristine, folder, store = root / "pristine", root / "raw", root / "base.duckdb"
    write_inputs(pristine, BASE)
    shutil.copytree(pristine, folder)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PPSS_PSEUDONYM_KEY", "corpus-key")
        assert main(["ingest", "--raw", str(folder), "--store", str(store)]) == 0
    return pristine, folder, store


def _case(base, tmp_path: Path) -> tuple[Path, Path]:
    """The delivery folder back to its pristine files, and a copy of the store that loaded them:
    a case then changes one file, as when a corrected (or broken) file arrives."""
    pristine, folder, store = base
    shutil.rmtree(folder)
    shutil.copytree(pristine, folder)
    shutil.copyfile(store, tmp_path / "s.duckdb")
    return folder, tmp_path / "s.duckdb"


# Identity numbers in any form, and guids: never in a message, the console or the log.
PERSONAL = re.compile(r"(?<!\d)(\d{2})?\d{6}[-+]?\d{4}(?!\d)|[0-9a-f]{8}-[0-9a-f]{4}-", re.I)


def _ingest(folder: Path, store: Path, capsys) -> tuple[int, list, list]:
    status = main(["ingest", "--raw", str(folder), "--store", str(store)])
    out = capsys.readouterr()
    assert "Traceback" not in out.err and "internal error" not in out.err, out.err
    assert not PERSONAL.search(out.out + out.err), "personal data on the console"
    con = duckdb.connect(str(store), read_only=True)
    try:
        log = con.execute("""select path, status, rows_read, rows_loaded, rows_quarantined, rows_unused
                             from load_log order by file_id""").fetchall()
        quarantine = con.execute("select path, location, column_name, rule, message from quarantine").fetchall()
        messages = con.execute("select status, rows_loaded, message from load_log").fetchall()
    finally:
        con.close()
    for q in quarantine:
        assert not PERSONAL.search(q[4] or ""), f"personal data in a quarantine message: {q[3]}"
    for st, loaded, message in messages:
        assert not PERSONAL.search(message or ""), "personal data in a load_log message"
        if st == "loaded":  # the message agrees with the row's own counts
            assert message.startswith(f"{loaded} loaded"), message
    return status, log, quarantine


def test_the_base_set_loads_clean(base, tmp_path, capsys) -> None:
    folder, store = _case(base, tmp_path)
    status, log, quarantine = _ingest(folder, store, capsys)
    assert status == 0 and quarantine == []
    assert all(r[1] == "loaded" for r in log) and len(log) == 7


@pytest.mark.parametrize("bad", CORPUS, ids=[b.name for b in CORPUS])
def test_bad_input_verdict(bad: Bad, base, tmp_path, capsys) -> None:
    folder, store = _case(base, tmp_path)
    bad.change(folder)
    status, log, quarantine = _ingest(folder, store, capsys)
    assert status == bad.exit
    for path, _, read, loaded, quarantined, unused in log:
        assert read == loaded + quarantined + unused, f"{path} does not reconcile"
    latest = [r for r in log if r[0].endswith("/" + bad.file)][-1]  # the version this case delivered
    hits = [q for q in quarantine if q[0].endswith("/" + bad.file) and q[3] in bad.rule.split(PIPE)]
    if bad.location is None:
        assert latest[1] == "rejected"
        assert [(q[1], q[3]) for q in hits] == [("whole file", bad.rule)], quarantine
        if len([r for r in log if r[0] == latest[0]]) > 1:  # the version loaded before stays current
            assert [r[1] for r in log if r[0] == latest[0]] == ["loaded", "rejected"]
    else:
        assert latest[1] == "loaded"
        assert bad.location in {q[1] for q in hits}, quarantine
        assert len(hits) == bad.also, hits
        assert latest[4] >= 1 or bad.location.count(".enrolments[") == 1
    for q in hits:
        assert q[4] and len(q[4]) > 20  # a message that says what is wrong and what to do


def test_held_rows_load_once_their_reference_arrives(base, tmp_path, capsys) -> None:
    """A grade of a pupil no persons export holds is held, then loads when the pupil arrives."""
    folder, store = _case(base, tmp_path)
    store.unlink()  # a first delivery without pupil two's person record
    persons = json.loads((folder / "persons.json").read_text(encoding="utf-8"))
    second = {"data": [persons["data"].pop(1)], "pageToken": None}
    (folder / "persons.json").write_text(json.dumps(persons), encoding="utf-8")
    status, log, quarantine = _ingest(folder, store, capsys)
    assert status == 0 and {q[3] for q in quarantine} == {"unknown_pupil", "unknown_student"}
    (folder / "persons_2.json").write_text(json.dumps(second), encoding="utf-8")
    status, log, quarantine = _ingest(folder, store, capsys)
    assert status == 0 and quarantine == []
    assert all(r[4] == 0 for r in log)


UNUSUAL = {
    "register_utf8_bom": lambda f: (f / "ppss_register.csv").write_bytes(
        b"\xef\xbb\xbf" + (f / "ppss_register.csv").read_bytes().decode("cp1252").encode("utf-8")
    ),
    "persons_second_page": lambda f: _split_persons(f),
    "plus_separator_for_a_centenarian": edit_json(
        "persons.json",
        lambda d: d["data"].append(
            {"id": person_guid(50), "civicNo": {"value": "121212+1212"}, "securityMarking": "Ingen", "enrolments": []}
        ),
    ),
    "register_excel_with_date_cells_and_trailing_rows": lambda f: _register_as_excel(f),
    "guids_in_lower_case_without_braces": replace(
        "betyg_2016-06.xml", f'<elev id="{{{person_guid(1).upper()}}}">', f'<elev id="{person_guid(1)}">'
    ),
    "headers_with_case_and_spaces": replace(
        "ppss_register.csv", "Personnummer;Program", " PERSONNUMMER ;program ", encoding="cp1252"
    ),
}


def _split_persons(folder: Path) -> None:
    doc = json.loads((folder / "persons.json").read_text(encoding="utf-8"))
    (folder / "persons.json").write_text(json.dumps({"data": doc["data"][:1], "pageToken": "p2"}), encoding="utf-8")
    (folder / "persons_page2.json").write_text(
        json.dumps({"data": doc["data"][1:], "pageToken": None}), encoding="utf-8"
    )


def _register_as_excel(folder: Path) -> None:
    from datetime import datetime

    (folder / "ppss_register.csv").unlink()
    book = xlsxwriter.Workbook(str(folder / "ppss_register.xlsx"))
    sheet = book.add_worksheet()
    fmt = book.add_format({"num_format": "yyyy-mm-dd"})
    sheet.write_row(
        0,
        0,
        ["Personnummer", "Program", "Stadsdel", "Skolenhetskod", "Inskriven", "Utskriven", "Urvalsgrund", "Insatser"],
    )
    sheet.write_row(1, 0, [civic(1), "PPSS", "Farsta", SCHOOL_A[1]])
    sheet.write_datetime(1, 4, datetime(2016, 1, 15), fmt)
    sheet.write_row(1, 6, ["Hög frånvaro", "Kurator"])
    for r in range(2, 8):
        sheet.write_blank(r, 4, None, fmt)
    book.close()


@pytest.mark.parametrize("name", list(UNUSUAL))
def test_unusual_but_valid_inputs_load(name: str, base, tmp_path, capsys) -> None:
    folder, store = _case(base, tmp_path)
    store.unlink()  # each unusual delivery on its own
    UNUSUAL[name](folder)
    status, log, quarantine = _ingest(folder, store, capsys)
    assert status == 0 and quarantine == [], quarantine
    assert all(r[1] == "loaded" and r[2] == r[3] + r[5] for r in log)
    con = duckdb.connect(str(store), read_only=True)
    try:
        assert con.execute("select count(*) from src_register").fetchall() == [(1,)]
        assert con.execute("select count(distinct pupil_key) from src_persons").fetchall()[0][0] >= 2
    finally:
        con.close()
