"""Swedish identity numbers and pseudonymisation.

Rules from Skatteverket, "Personnummer" (SKV 704) and "Samordningsnummer" (SKV 707):
YYMMDD-NNNC, `+` from the year the person turns 100, C a Luhn check digit over the
10-digit form, the third digit of NNN odd for men and even for women, and for a
samordningsnummer the day of birth plus 60.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

_PNR = re.compile(r"^(?P<cc>\d{2})?(?P<yy>\d{2})(?P<mm>\d{2})(?P<dd>\d{2})(?P<sep>[-+]?)(?P<nnn>\d{3})(?P<c>\d)$")

# Used only for data written by `ppss demo-data` (marked by DEMO_MARKER in its folder).
DEMO_KEY = b"ppss-demo-key: not secret, never for real data"
DEMO_MARKER = "PPSS_DEMO_DATA"


# Rule names and messages; messages never repeat the number itself.
IDENTITY_RULES = {
    "civic_no_missing": "identity number is missing",
    "civic_no_format": "identity number is not in a form YYYYMMDD-NNNC, YYYYMMDDNNNC, YYMMDD-NNNC, "
    "YYMMDD+NNNC or YYMMDDNNNC",
    "civic_no_check_digit": "identity number fails its check digit (Luhn)",
    "civic_no_date": "identity number has no real date of birth (samordningsnummer: day + 60)",
}


class InvalidIdentity(ValueError):
    """An identity number that fails a rule; `rule` names it, the message never repeats it."""

    def __init__(self, rule: str, message: str | None = None) -> None:
        super().__init__(message or IDENTITY_RULES[rule])
        self.rule = rule


@dataclass(frozen=True)
class Identity:
    digits12: str
    birth_date: date
    gender: str  # "F" or "M"
    is_coordination_number: bool


def luhn_digit(digits9: str) -> int:
    """The Luhn check digit of the first nine digits of `YYMMDDNNN` (domain rules)."""
    total = 0
    for i, ch in enumerate(digits9):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return (10 - total % 10) % 10


def luhn_ok(digits10: str) -> bool:
    return len(digits10) == 10 and luhn_digit(digits10[:9]) == int(digits10[9])


def parse_identity(text: str | None, on: date | None = None) -> Identity:
    """Check and normalise a personnummer or samordningsnummer given in any common form.

    `on` is the date the century of a 10-digit form is judged against (default today).
    """
    if text is None or not str(text).strip():
        raise InvalidIdentity("civic_no_missing")
    s = re.sub(r"\s", "", str(text))
    if s.endswith(".0"):  # Excel turns a number-looking cell into a float
        s = s[:-2]
    m = _PNR.match(s)
    if not m:
        raise InvalidIdentity("civic_no_format")
    yy, mm, dd = int(m["yy"]), int(m["mm"]), int(m["dd"])
    coordination = dd > 60
    day = dd - 60 if coordination else dd
    ten = f"{m['yy']}{m['mm']}{m['dd']}{m['nnn']}{m['c']}"
    if not luhn_ok(ten):
        raise InvalidIdentity("civic_no_check_digit")
    on = on or date.today()
    if m["cc"]:
        if m["sep"] == "+":
            raise InvalidIdentity("civic_no_format", "a 12-digit identity number never carries '+'")
        year = int(m["cc"]) * 100 + yy
    else:
        # The most recent century that puts the birth year not after `on`; '+' adds a hundred years.
        year = (on.year // 100) * 100 + yy
        if year > on.year:
            year -= 100
        if m["sep"] == "+":
            year -= 100
    try:
        born = date(year, mm, day)
    except ValueError:
        raise InvalidIdentity("civic_no_date") from None
    if born > on:
        raise InvalidIdentity("civic_no_date", "identity number has a date of birth in the future")
    gender = "M" if int(m["nnn"][2]) % 2 == 1 else "F"
    return Identity(f"{year:04d}{ten[2:]}", born, gender, coordination)


def load_key(raw_dir: Path | None = None) -> tuple[bytes, bool]:
    """The pseudonymisation key and whether it is the built-in demo key.

    Order: PPSS_PSEUDONYM_KEY, the file named by PPSS_PSEUDONYM_KEY_FILE, and the demo key
    only for a folder written by `ppss demo-data`. Raises KeyError with advice otherwise.
    """
    value = os.environ.get("PPSS_PSEUDONYM_KEY")
    if value:
        return value.encode(), False
    key_file = os.environ.get("PPSS_PSEUDONYM_KEY_FILE")
    if key_file:
        path = Path(key_file)
        if not path.is_file():
            raise KeyError(f"PPSS_PSEUDONYM_KEY_FILE names {path}, which is not a readable file")
        return path.read_bytes().strip(), False
    if raw_dir is not None and (raw_dir / DEMO_MARKER).exists():
        return DEMO_KEY, True
    raise KeyError(
        "no pseudonymisation key: set PPSS_PSEUDONYM_KEY, or PPSS_PSEUDONYM_KEY_FILE to a file "
        "holding the key (keep it outside the repository). Only `ppss demo-data` output runs "
        "with the built-in demo key."
    )


def key_fingerprint(key: bytes) -> str:
    """Identifies a key without revealing it, so a store never mixes pseudonyms of two keys."""
    return hmac.new(key, b"ppss-key-fingerprint", hashlib.sha256).hexdigest()[:16]


def pupil_key(key: bytes, digits12: str) -> str:
    """pupil_key = hex(HMAC-SHA256(key, normalised_12_digits))[:16] (data contract 2)."""
    return hmac.new(key, digits12.encode(), hashlib.sha256).hexdigest()[:16]


def normalise_guid(text: str | None) -> str | None:
    """Platform guids are compared without braces and case-insensitively (data contract 1.3)."""
    if text is None:
        return None
    s = str(text).strip().strip("{}").lower()
    return s or None


GUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# An identity number in any form, or a guid, inside free text (a school's name, a file name).
PERSONAL_TEXT = r"(^|\D)(\d{2})?\d{6}[-+]?\d{4}(\D|$)|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"


def looks_personal(text: str) -> bool:
    """True when `text` holds what looks like an identity number or a platform id."""
    return re.search(PERSONAL_TEXT, text) is not None


# The parts of a name that PERSONAL_TEXT detects: an identity number between non-digits, a guid
# (or the start of one).
_PERSONAL_PARTS = re.compile(
    r"(?<!\d)(?:\d{2})?\d{6}[-+]?\d{4}(?!\d)"
    r"|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-(?:[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?"
)


def pseudonymised_name(key: bytes, text: str) -> str:
    """`text` (a file or folder name) with each identity number or guid replaced by a keyed
    pseudonym (`pnr-1a2b3c4d`, `id-…`): stable for one key, so a corrected file under the same
    name is still the same file, and never the number itself in the store, logs or Data Docs."""

    def pseudonym(m: re.Match[str]) -> str:
        part = m.group(0)
        kind = "pnr" if re.fullmatch(r"[\d+-]+", part) and part.count("-") <= 1 else "id"
        digest = hmac.new(key, f"name:{part.lower()}".encode(), hashlib.sha256).hexdigest()[:8]
        return f"{kind}-{digest}"

    return _PERSONAL_PARTS.sub(pseudonym, text)


def platform_ref(key: bytes, kind: str, guid: str | None) -> str | None:
    """A keyed hash of a platform id: links records across files without storing the id."""
    g = normalise_guid(guid)
    if g is None:
        return None
    return hmac.new(key, f"{kind}:{g}".encode(), hashlib.sha256).hexdigest()[:16]
