"""Inputs written by hand against the data contract (not by the demo generator).

`write_inputs(folder, cases)` writes SS 12000 persons, organisations and attendance pages,
two Skolplattformen grade exports and a register CSV, one pupil per case. A grade spec is
a compact string: "SV=A EN=E M2/DEU=C MA=-" (subject[/language]=value), all set in
VT 2016 (datum 2016-06-10) unless a case says otherwise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.rules import identity

NS = "http://pingpong.se/schemas/grades/v1.1"
SCHOOL_A = ("8f0c7f4e-1c7b-4c39-9a53-4a4d2b1e0001", "12345678", "Testskolan A", "Farsta")
SCHOOL_B = ("8f0c7f4e-1c7b-4c39-9a53-4a4d2b1e0002", "23456789", "Testskolan B", "Älvsjö")


def luhn_digit(nine: str) -> str:
    return str(identity.luhn_digit(nine))


def civic(n: int, gender: str = "F", year: int = 2000) -> str:
    """A valid 12-digit personnummer for born `year`-03-(n % 28 + 1), unique per n."""
    serial = f"{(n * 7) % 100:02d}{(2 * (n % 5) + (1 if gender == 'M' else 0))}"
    nine = f"{year % 100:02d}03{n % 28 + 1:02d}{serial}"
    return f"{year // 100}{nine}{luhn_digit(nine)}"


@dataclass
class Case:
    name: str
    grades: str = ""  # VT 2016 grades of the newest export
    gender: str = "F"
    earlier_export: str = ""  # grades in the first export (tom 2016-02-28), superseded by the newest
    extra_xml: str = ""  # raw <ämnesbetyg> elements appended to the newest export
    attendance: list[dict] = field(default_factory=list)
    register: dict | None = None
    school_year: int = 9
    expected: dict = field(default_factory=dict)
    reason: str = ""


def grade_xml(spec: str, datum: str = "2016-06-10", term: tuple[str, int] | None = ("VT", 2016)) -> str:
    out = []
    for token in spec.split():
        subject, value = token.split("=")
        lang = ""
        if "/" in subject:
            subject, language = subject.split("/")
            lang = f"<språk>{language}</språk>"
        termin = f"<termin><typ>{term[0]}</typ><år>{term[1]}</år></termin>" if term else ""
        out.append(
            f"<ämnesbetyg><value>{value}</value><datum>{datum}</datum><prövning>false</prövning>"
            f"<skola>{{{SCHOOL_A[0].upper()}}}</skola><skolform>GR</skolform>"
            f"<ämnesförkortning>{subject}</ämnesförkortning>{lang}{termin}<slutbetyg>true</slutbetyg></ämnesbetyg>"
        )
    return "".join(out)


def person_guid(i: int) -> str:
    return f"00000000-0000-4000-8000-{i:012d}"


def write_inputs(folder: Path, cases: list[Case]) -> dict[str, str]:
    """Write the files; returns case name -> 12-digit identity number."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = {c.name: civic(i + 1, c.gender) for i, c in enumerate(cases)}
    orgs = [
        {
            "id": g,
            "displayName": name,
            "organisationType": "Skolenhet",
            "schoolUnitCode": code,
            "municipalityCode": "0180",
        }
        for g, code, name, _ in (SCHOOL_A, SCHOOL_B)
    ]
    (folder / "organisations.json").write_text(json.dumps({"data": orgs, "pageToken": None}), encoding="utf-8")
    (folder / "skolenheter.csv").write_text(
        "skolenhetskod;skolnamn;stadsdel;huvudman\n"
        + "".join(f"{code};{name};{district};kommunal\n" for _, code, name, district in (SCHOOL_A, SCHOOL_B)),
        encoding="utf-8",
    )
    persons = []
    for i, c in enumerate(cases):
        persons.append(
            {
                "id": person_guid(i + 1),
                "givenName": f"Testnamn{i}",
                "familyName": "Testsson",
                "civicNo": {"value": ids[c.name]},
                "securityMarking": "Ingen",
                "enrolments": [
                    {
                        "enroledAt": {"id": SCHOOL_A[0]},
                        "schoolYear": c.school_year - 1,
                        "schoolType": "GR",
                        "startDate": "2014-08-18",
                        "endDate": "2015-06-12",
                    },
                    {
                        "enroledAt": {"id": SCHOOL_A[0]},
                        "schoolYear": c.school_year,
                        "schoolType": "GR",
                        "startDate": "2015-08-18",
                        "endDate": "2016-06-12",
                    },
                ],
            }
        )
    (folder / "persons.json").write_text(json.dumps({"data": persons, "pageToken": None}), encoding="utf-8")
    first, newest = [], []
    for i, c in enumerate(cases):
        guid = "{" + person_guid(i + 1).upper() + "}"
        if c.earlier_export:
            first.append(
                f'<elev id="{guid}">{grade_xml(c.earlier_export, "2016-01-20", ("HT", 2015))}'
                f"{grade_xml(c.earlier_export)}</elev>"
            )
        if c.grades or c.extra_xml:
            newest.append(f'<elev id="{guid}">{grade_xml(c.grades)}{c.extra_xml}</elev>')
    for name, tom, elevs in (("betyg_2016-02.xml", "2016-02-28", first), ("betyg_2016-06.xml", "2016-06-30", newest)):
        (folder / name).write_text(
            f'<?xml version="1.0" encoding="utf-8"?>\n<betyg xmlns="{NS}" from="2015-07-01" '
            f'tom="{tom}">{"".join(elevs)}</betyg>',
            encoding="utf-8",
        )
    records = []
    for i, c in enumerate(cases):
        for rec in c.attendance:
            records.append(
                {
                    "activity": {"id": "aaaaaaaa-0000-4000-8000-000000000001"},
                    "student": {"id": person_guid(i + 1)},
                    "otherAttendanceSum": 0,
                    **rec,
                }
            )
    (folder / "attendance.json").write_text(json.dumps({"data": records, "pageToken": None}), encoding="utf-8")
    rows = ["Personnummer;Program;Stadsdel;Skolenhetskod;Inskriven;Utskriven;Urvalsgrund;Insatser"]
    for c in cases:
        if c.register:
            r = c.register
            rows.append(f"{ids[c.name]};PPSS;Farsta;{SCHOOL_A[1]};{r['start']};{r.get('end', '')};Hög frånvaro;Kurator")
    (folder / "ppss_register.csv").write_bytes(("\r\n".join(rows) + "\r\n").encode("cp1252"))
    return ids


def attendance(start: str, end: str, offered: int, valid: int, invalid: int) -> dict:
    return {
        "startDate": start,
        "endDate": end,
        "offeredSum": offered,
        "reportedSum": offered,
        "validAbsenceSum": valid,
        "invalidAbsenceSum": invalid,
        "attendanceSum": offered - valid - invalid,
    }
