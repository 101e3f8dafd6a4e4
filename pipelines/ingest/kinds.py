"""The input kinds of the data contract, in loading order (each defined in its reader module).

Places and persons come first, so a reader's checks can speak of what is already known
(the register's stadsdelar are checked against skolenheter.csv loaded before it).
"""

from __future__ import annotations

import fnmatch

from pipelines.ingest.readers import InputKind, attendance, grades, organisations, persons, register

KINDS: tuple[InputKind, ...] = (
    organisations.ORGANISATIONS,
    organisations.SCHOOL_UNITS,
    persons.KIND,
    grades.KIND,
    attendance.KIND,
    register.KIND,
)
BY_NAME: dict[str, InputKind] = {k.name: k for k in KINDS}
SRC_TABLES: tuple[str, ...] = tuple(t for k in KINDS for t in k.tables)
LABELS: dict[str, str] = {k.name: k.label for k in KINDS}


def kind_of(file_name: str) -> InputKind | None:
    """The kind whose pattern the name matches (case-insensitively), or None."""
    name = file_name.lower()
    return next((k for k in KINDS if any(fnmatch.fnmatch(name, p) for p in k.patterns)), None)
