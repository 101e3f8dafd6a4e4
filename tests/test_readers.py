"""Readers on inputs written by hand against the contract, and the real grade example."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter

from pipelines.ingest.readers import FileRejected, decode_text, normalise_date, sniff
from pipelines.ingest.readers.attendance import read_attendance
from pipelines.ingest.readers.grades import normalise_subject, read_grades
from pipelines.ingest.readers.organisations import read_organisations, read_school_units
from pipelines.ingest.readers.persons import read_persons
from pipelines.ingest.readers.register import read_register, split_vocabulary

KEY = b"k"
ON = date(2016, 12, 31)
FIXTURES = Path(__file__).parent / "fixtures"


def test_real_example_export_counts_and_terms() -> None:
    ex = read_grades(FIXTURES / "betyg-v1.1-example.xml", KEY)
    frame = pl.concat(list(ex.frames()))
    # 7 grade elements: 3 kursbetyg (unused, course grades), 4 ämnesbetyg in GR
    assert (ex.rows_read, ex.rows_unused, frame.height) == (7, 3, 4)
    rows = {r["_loc"]: r for r in frame.iter_rows(named=True)}
    mod = rows["/betyg/elev[2]/ämnesbetyg[1]"]
    assert (mod["subject"], mod["language"]) == ("ML", "DEU")  # GRGRMOD01 = modersmål
    assert (mod["term"], mod["term_year"], mod["term_from_date"]) == ("HT", "2014", True)  # datum 2014-12-17
    assert rows["/betyg/elev[3]/ämnesbetyg[3]"]["subject"] == "M2"
    assert ex.export.export_tom is None  # old files lack from/tom


def test_grade_export_streams_in_bounded_chunks() -> None:
    # chunks close between pupils: elev 2 brings 1 GR grade, elev 3 three more
    ex = read_grades(FIXTURES / "betyg-v1.1-example.xml", KEY, chunk_rows=1)
    assert [f.height for f in ex.frames()] == [1, 3]
    assert ex.rows_read == 7 and ex.rows_unused == 3 and len(ex.export.pupils) == 3
    assert [f.height for f in read_grades(FIXTURES / "betyg-v1.1-example.xml", KEY, chunk_rows=2).frames()] == [4]


@pytest.mark.parametrize(
    ("code", "lang", "want"),
    [
        ("SV", None, ("SV", None)),
        ("GRGRSVA01", None, ("SVA", None)),
        ("M2", "deu", ("M2", "DEU")),
        ("M1FRA", None, ("M1", "FRA")),
        ("GRGRMSP01", "SPA", ("M2", "SPA")),
        ("XYZ", None, (None, None)),
        ("GRGRIDR01", None, ("IDH", None)),
        ("NO", None, ("NO", None)),
    ],
)
def test_subject_codes(code, lang, want) -> None:
    assert normalise_subject(code, lang) == want


def test_html_error_page_saved_as_json_is_named(tmp_path) -> None:
    p = tmp_path / "persons_2.json"
    p.write_text("<!DOCTYPE html><html><body>502 Bad Gateway</body></html>")
    with pytest.raises(FileRejected, match="HTML page"):
        read_persons(p, KEY, ON)


def test_cut_off_json_and_xml_are_rejected_with_advice(tmp_path) -> None:
    p = tmp_path / "attendance_1.json"
    p.write_text('{"data": [{"student": {"id": "a"}')
    with pytest.raises(FileRejected, match="cut-off transfer"):
        read_attendance(p, KEY, ON)
    x = tmp_path / "betyg_1.xml"
    x.write_text('<betyg xmlns="http://pingpong.se/schemas/grades/v1.1"><elev id="{A}"><ämnesbetyg><value>A')
    with pytest.raises(FileRejected, match="breaks off"):
        list(read_grades(x, KEY).frames())


def test_wrong_namespace_is_rejected(tmp_path) -> None:
    x = tmp_path / "betyg_1.xml"
    x.write_text('<betyg xmlns="http://example.org/other"><elev id="{A}"/></betyg>')
    with pytest.raises(FileRejected, match=r"not <betyg> in http://pingpong\.se"):
        list(read_grades(x, KEY).frames())


def test_json_of_the_wrong_shape(tmp_path) -> None:
    p = tmp_path / "organisations.json"
    p.write_text(json.dumps([{"id": "x"}]))
    with pytest.raises(FileRejected, match="expected an object with a 'data' list"):
        read_organisations(p, KEY)


def test_persons_second_page_and_guid_forms(tmp_path) -> None:
    p = tmp_path / "persons_002.json"
    p.write_text(
        json.dumps(
            {
                "data": [
                    {
                        "id": "{BDCACF8C-0930-11E5-A6C0-1697F925EC7B}",
                        "civicNo": {"value": "811218-9876"},
                        "givenName": "Anna",
                        "enrolments": [
                            {"enroledAt": {"id": "x"}, "schoolYear": 8, "schoolType": "GR", "startDate": "2015-08-18"}
                        ],
                    },
                    {"id": "not-a-guid", "civicNo": {"value": "811218-9875"}},
                ],
                "pageToken": None,
            }
        )
    )
    ex = read_persons(p, KEY, ON)
    assert ex.rows_read == 2
    first, second = ex.rows.row(0, named=True), ex.rows.row(1, named=True)
    assert first["person_id_status"] == "ok" and first["gender"] == "M" and first["birth_year"] == 1981
    assert first["school_year"] == "8" and first["end_date"] is None and first["end_date_ok"]
    assert second["person_id_status"] == "malformed" and second["civic_no_status"] == "civic_no_check_digit"
    assert "givenName" not in ex.rows.columns and "Anna" not in str(ex.rows.to_dicts())


def test_register_csv_windows_1252_with_messy_headers_and_blank_rows(tmp_path) -> None:
    p = tmp_path / "ppss_2016.csv"
    text = (
        " personnummer ;PROGRAM;Stadsdel;Skolenhetskod;Inskriven;Utskriven;Urvalsgrund;Insatser\r\n"
        "811218-9876;;Farsta;12345678;2016-02-01;;hög  frånvaro ,Låga studieresultat;kurator, SIP\r\n"
        "19811218-9876;skolfam;Älvsjö;23456789;42401;2016-06-01;Skolk;Läxhjälp\r\n"
        ";;;;;;;\r\n;;;;;;;\r\n"
    )
    p.write_bytes(text.encode("cp1252"))
    ex = read_register(p, KEY, ON)
    assert (ex.rows_read, ex.rows_unused, ex.rows.height) == (4, 2, 2)
    assert ex.encoding == "windows-1252"
    a, b = ex.rows.row(0, named=True), ex.rows.row(1, named=True)
    assert a["programme"] == "PPSS" and a["selection_reasons"] == ["Hög frånvaro", "Låga studieresultat"]
    assert a["interventions"] == ["Kurator", "SIP"] and a["_loc"] == "row 2"
    assert b["programme"] == "SkolFam" and b["district"] == "Älvsjö" and b["start_date"] == "2016-02-01"
    assert b["unknown_selection_reasons"] == "Skolk"
    assert a["pupil_key"] == b["pupil_key"]  # two forms of one identity number


def test_register_excel_with_date_cells_text_dates_and_trailing_rows(tmp_path) -> None:
    p = tmp_path / "ppss.xlsx"
    book = xlsxwriter.Workbook(str(p))
    sheet = book.add_worksheet()
    fmt = book.add_format({"num_format": "yyyy-mm-dd"})
    sheet.write_row(
        0,
        0,
        ["Personnummer", "Program", "Stadsdel", "Skolenhetskod", "Inskriven", "Utskriven", "Urvalsgrund", "Insatser"],
    )
    sheet.write_string(1, 0, "811218-9876")
    sheet.write_datetime(1, 4, datetime(2015, 3, 2), fmt)
    sheet.write_string(2, 0, "8112189876")
    sheet.write_string(2, 4, "2015-04-01")
    sheet.write_number(2, 3, 12345678)
    for r in range(3, 6):
        sheet.write_blank(r, 0, None, fmt)
    book.close()
    ex = read_register(p, KEY, ON)
    rows = ex.rows.to_dicts()
    assert [r["start_date"] for r in rows] == ["2015-03-02", "2015-04-01"]
    assert rows[1]["school_unit_code"] == "12345678"
    assert ex.rows_read == ex.rows.height + ex.rows_unused


def test_missing_required_column_names_it(tmp_path) -> None:
    p = tmp_path / "ppss.csv"
    p.write_text("Pnr;Inskriven\n811218-9876;2016-01-01\n")
    with pytest.raises(FileRejected, match=r"missing column.*Personnummer"):
        read_register(p, KEY, ON)


def test_school_units_csv_with_bom(tmp_path) -> None:
    p = tmp_path / "skolenheter.csv"
    p.write_bytes("\ufeffskolenhetskod;skolnamn;stadsdel;huvudman\n12345678;Skolan;Farsta;Kommunal\n".encode())
    ex = read_school_units(p)
    assert ex.rows.row(0, named=True)["huvudman"] == "kommunal"


def test_attendance_minutes_kept_as_text_and_typed(tmp_path) -> None:
    p = tmp_path / "attendance_1.json"
    base = {
        "activity": {"id": "a"},
        "student": {"id": "bdcacf8c-0930-11e5-a6c0-1697f925ec7b"},
        "startDate": "2016-02-01",
        "endDate": "2016-02-29",
    }
    p.write_text(
        json.dumps(
            {
                "data": [
                    {
                        **base,
                        "offeredSum": 600.0,
                        "validAbsenceSum": 30,
                        "invalidAbsenceSum": 12.5,
                        "attendanceSum": 557,
                    },
                    {**base, "offeredSum": 600, "validAbsenceSum": -3, "invalidAbsenceSum": 0},
                ]
            }
        )
    )
    ex = read_attendance(p, KEY, ON)
    a, b = ex.rows.to_dicts()
    assert a["offered"] == "600" and a["offered_min"] == 600  # 600.0 in JSON is a whole number
    assert a["invalid_absence"] == "12.5" and a["invalid_absence_min"] is None  # not whole: validation flags it
    assert b["valid_absence"] == "-3" and b["absence_min"] == -3


def test_vocabulary_is_forgiving_about_case_and_space() -> None:
    assert split_vocabulary(" SIP,  hembesök ;Annat", ["SIP", "Hembesök", "Annat"]) == (
        ["SIP", "Hembesök", "Annat"],
        None,
    )
    assert split_vocabulary("SIP, okänd", ["SIP"]) == (["SIP"], "okänd")


@pytest.mark.parametrize(
    ("raw", "iso"),
    [
        ("2015-03-02", "2015-03-02"),
        ("42065", "2015-03-02"),
        ("2015-03-02 00:00:00", "2015-03-02"),
        ("20150302", "2015-03-02"),  # ISO 8601 basic form
        ("2015-03-02T10:15:00+01:00", "2015-03-02"),
        ("20150302T101500Z", "2015-03-02"),
        ("2/3/2015", "2/3/2015"),
        ("201503021", "201503021"),
        (None, None),
    ],
)
def test_dates_normalised_or_left_for_validation(raw, iso) -> None:
    assert normalise_date(raw) == iso


@pytest.mark.parametrize(
    ("raw", "looks_like"),
    [
        ('<?xml version="1.0" encoding="utf-16"?><betyg/>'.encode("utf-16"), "an XML document"),
        (b"\x1f\x8b\x08\x00rest", "a gzip-compressed file"),
        (b'\xef\xbb\xbf{"data": []}', "JSON"),
        (b"PK\x03\x04rest", "a zip container"),
    ],
)
def test_sniff_sees_through_byte_order_marks_and_names_compression(raw, looks_like) -> None:
    assert sniff(raw).startswith(looks_like)


def test_encoding_is_detected_per_file_and_a_mix_rejected() -> None:
    assert decode_text("Spånga".encode()) == ("Spånga", "utf-8")
    assert decode_text("Spånga".encode("cp1252")) == ("Spånga", "windows-1252")
    assert decode_text("Spånga".encode("utf-16")) == ("Spånga", "utf-16-le")  # with its byte-order mark
    with pytest.raises(FileRejected, match=r"mixes encodings.*line 2") as e:
        decode_text("Spånga\n".encode() + "Älvsjö\n".encode("cp1252"))
    assert e.value.rule == "encoding_mixed"
