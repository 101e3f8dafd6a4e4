"""Identity numbers (Skatteverket's rules) and pseudonymisation (data contract 2)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.rules.identity import (
    DEMO_KEY,
    DEMO_MARKER,
    InvalidIdentity,
    key_fingerprint,
    load_key,
    luhn_ok,
    normalise_guid,
    parse_identity,
    platform_ref,
    pupil_key,
)

ON = date(2016, 12, 31)


def _valid(nine: str) -> str:
    """Nine digits completed with their Luhn check digit."""
    return nine + str(next(d for d in range(10) if luhn_ok(nine + str(d))))


@pytest.mark.parametrize("text", ["19811218-9876", "198112189876", "811218-9876", "8112189876", " 811218 - 9876 "])
def test_every_common_form_normalises_to_12_digits(text: str) -> None:
    ident = parse_identity(text, ON)
    assert ident.digits12 == "198112189876"
    assert ident.birth_date == date(1981, 12, 18)
    assert ident.gender == "M"  # third digit of 987 is 7: odd


def test_plus_sign_means_a_hundred_years_or_older() -> None:
    assert parse_identity("121212+1212", ON).digits12 == "191212121212"
    assert parse_identity("121212-1212", ON).digits12 == "201212121212"


def test_samordningsnummer_day_plus_sixty() -> None:
    # 1981-12-18 as samordningsnummer: day 78; Luhn over 8112789876's first nine digits
    nine = "811278987"
    digit = next(d for d in range(10) if luhn_ok(nine + str(d)))
    ident = parse_identity(f"{nine[:6]}-{nine[6:]}{digit}", ON)
    assert ident.is_coordination_number and ident.birth_date == date(1981, 12, 18)


def test_gender_from_third_digit_of_the_serial() -> None:
    assert parse_identity("121212-1212", ON).gender == "M"  # NNN 121: third digit 1, odd
    assert parse_identity(_valid("811218982"), ON).gender == "F"  # NNN 982: third digit 2, even


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("", "civic_no_missing"),
        (None, "civic_no_missing"),
        ("81121-9876", "civic_no_format"),
        ("811218-9875", "civic_no_check_digit"),
        (_valid("811318987"), "civic_no_date"),
        (_valid("810230987"), "civic_no_date"),
        ("abcdef-ghij", "civic_no_format"),
        ("19811218+9876", "civic_no_format"),
    ],
)
def test_invalid_numbers_name_the_rule_and_never_echo_the_number(text, rule) -> None:
    with pytest.raises(InvalidIdentity) as e:
        parse_identity(text, ON)
    assert e.value.rule == rule
    if text:
        assert text.strip() not in str(e.value)


def test_pupil_key_is_hmac_sha256_of_the_12_digits_truncated_to_16_hex() -> None:
    want = hmac.new(b"k", b"198112189876", hashlib.sha256).hexdigest()[:16]
    assert pupil_key(b"k", "198112189876") == want
    assert pupil_key(b"k", "198112189876") != pupil_key(b"other", "198112189876")


def test_guids_compare_without_braces_and_case() -> None:
    a = platform_ref(b"k", "person", "{BDCACF8C-0930-11E5-A6C0-1697F925EC7B}")
    assert a == platform_ref(b"k", "person", "bdcacf8c-0930-11e5-a6c0-1697f925ec7b")
    assert normalise_guid(" {Ab} ") == "ab" and normalise_guid("") is None


def test_key_sources(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("PPSS_PSEUDONYM_KEY", raising=False)
    monkeypatch.delenv("PPSS_PSEUDONYM_KEY_FILE", raising=False)
    with pytest.raises(KeyError, match="PPSS_PSEUDONYM_KEY"):
        load_key(tmp_path)
    (tmp_path / DEMO_MARKER).write_text("demo")
    assert load_key(tmp_path) == (DEMO_KEY, True)
    keyfile = tmp_path / "key"
    keyfile.write_text("secret\n")
    monkeypatch.setenv("PPSS_PSEUDONYM_KEY_FILE", str(keyfile))
    assert load_key(tmp_path) == (b"secret", False)
    monkeypatch.setenv("PPSS_PSEUDONYM_KEY", "env-secret")
    assert load_key(tmp_path) == (b"env-secret", False)
    assert key_fingerprint(b"a") != key_fingerprint(b"b")


@given(st.dates(min_value=date(1920, 1, 1), max_value=date(2016, 12, 31)), st.integers(0, 999), st.booleans())
def test_any_valid_number_round_trips_in_every_form(born: date, serial: int, coordination: bool) -> None:
    day = born.day + (60 if coordination else 0)
    nine = f"{born:%y%m}{day:02d}{serial:03d}"
    digit = next(d for d in range(10) if luhn_ok(nine + str(d)))
    ten = nine + str(digit)
    age_100 = born.year <= ON.year - 100
    sep = "+" if age_100 else "-"
    full = f"{born.year}{ten[2:]}"
    forms = [full, f"{full[:8]}-{full[8:]}", f"{ten[:6]}{sep}{ten[6:]}"]
    if not age_100:
        forms.append(ten)
    for form in forms:
        ident = parse_identity(form, ON)
        assert ident.digits12 == full
        assert ident.birth_date == born
        assert ident.gender == ("M" if serial % 10 % 2 else "F")
