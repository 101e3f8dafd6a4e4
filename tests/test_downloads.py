"""Downloads of a protected table, read back as an analyst would: polars reads the tidy CSV
with numbers as numbers, the xlsx (fastexcel) holds the same cells, hidden and missing cells are
empty and told apart by their status column, and the data dictionary accumulates."""

from __future__ import annotations

import os
import stat
import zipfile

import polars as pl
import pytest

from pipelines.analysis.disclosure import Publication, keyed, members
from pipelines.report.downloads import DICTIONARY, readable, write_downloads


def _protected() -> pl.DataFrame:
    """Three districts; B rests on 5 pupils (hidden), C has no merit value (missing)."""
    df = pl.DataFrame(
        {
            "district": ["A", "B", "C"],
            "n": [40, 5, 30],
            "k": [10, 2, 12],
            "mean_merit": [201.5, 180.0, None],
        }
    ).with_columns((pl.col("k") / pl.col("n")).alias("share"))
    pupils = {d: [f"{d}{i}" for i in range(n)] for d, n in zip(df["district"], df["n"], strict=True)}
    df = df.with_columns(
        pl.Series(members("n"), [pupils[d] for d in df["district"]]),
        pl.Series(members("k"), [pupils[d][:k] for d, k in zip(df["district"], df["k"], strict=True)]),
    )
    pub = Publication(10)
    pub.table("t", df, counts={"n": keyed("pupils", "district"), "k": keyed("outcome", "district")})
    return pub.protect()["t"]


def test_tidy_csv_reads_back_with_numbers_and_status(tmp_path) -> None:
    csv, _, _ = write_downloads("behorighet", _protected(), "Behörighet per stadsdel", tmp_path)
    raw = csv.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf") and b"\r\n" not in raw and b";" not in raw
    assert raw.decode("utf-8").splitlines()[0] == (
        "district,n,n_status,k,k_status,mean_merit,mean_merit_status,share,share_status"
    )
    back = pl.read_csv(csv)
    assert back.schema["n"] == pl.Int64 and back.schema["share"] == pl.Float64
    assert back.schema["mean_merit"] == pl.Float64
    rows = {r["district"]: r for r in back.iter_rows(named=True)}
    assert rows["A"]["share"] == 0.25 and rows["A"]["share_status"] == "visad"
    assert rows["B"]["n"] is None and rows["B"]["n_status"] == "dold" and rows["B"]["share_status"] == "dold"
    assert rows["C"]["mean_merit"] is None and rows["C"]["mean_merit_status"] == "saknas"
    assert rows["C"]["share_status"] == "visad"
    assert "5" not in raw.decode().split("\n")[2].split(",")[1:], "no hidden value in B's row"
    assert not [c for c in back.columns if c.endswith("__hidden") or c == "suppressed"]


def test_xlsx_holds_the_same_cells(tmp_path) -> None:
    csv, xlsx, _ = write_downloads("t", _protected(), "Tabell", tmp_path)
    sheet = pl.read_excel(xlsx, sheet_name="data")
    assert sheet.equals(pl.read_csv(csv)), (sheet, pl.read_csv(csv))
    with zipfile.ZipFile(xlsx) as z:  # Excel shows the fractions (share, unit "andel") as percentages
        assert 'formatCode="0.0%"' in z.read("xl/styles.xml").decode()
    about = pl.read_excel(xlsx, sheet_name="om_tabellen", has_header=False)
    assert about[0, 0] == "Tabell" and "share_status" in about[:, 0].to_list()


def test_downloads_are_as_readable_as_the_report(tmp_path) -> None:
    """Not private to the writer (the temporary file's 0600): shared or served, every link works."""
    old = os.umask(0o022)
    try:
        files = write_downloads("t", _protected(), "Tabell", tmp_path)
    finally:
        os.umask(old)
    for f in [*files, tmp_path / "datakatalog.csv"]:
        assert stat.S_IMODE(f.stat().st_mode) == 0o644, f


def test_a_hidden_cell_is_written_empty_whatever_it_holds(tmp_path) -> None:
    """Flags rule: a frame whose hidden cell still holds its value publishes it empty."""
    leaky = _protected().with_columns(pl.when(pl.col("district") == "B").then(5).otherwise(pl.col("n")).alias("n"))
    csv, xlsx, _ = write_downloads("t", leaky, "Tabell", tmp_path)
    for frame in (pl.read_csv(csv), pl.read_excel(xlsx, sheet_name="data")):
        assert frame.filter(pl.col("district") == "B")["n"].to_list() == [None]


def test_an_unprotected_frame_is_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match="not a protected frame"):
        write_downloads("t", pl.DataFrame({"district": ["A"], "n": [3]}), "Tabell", tmp_path)
    assert not list(tmp_path.iterdir())


def test_data_dictionary_accumulates_one_set_of_rows_per_table(tmp_path) -> None:
    frame = _protected()
    write_downloads("a", frame, "Första", tmp_path)
    write_downloads(
        "b", frame, "Andra", tmp_path, columns={"district": "Stadsdel", "share": "Andel behöriga [andel (0–1)]"}
    )
    write_downloads("a", frame, "Första igen", tmp_path)  # written again: its rows replaced
    d = pl.read_csv(tmp_path / DICTIONARY)
    assert d.columns == ["table", "column", "description", "unit", "table_caption"]
    assert d.filter(pl.col("table") == "a").height == 9 and set(d["table_caption"]) == {"Första igen", "Andra"}
    b = {r["column"]: r for r in d.filter(pl.col("table") == "b").iter_rows(named=True)}
    assert list(b) == ["district", "share", "share_status"]
    assert b["share"]["description"] == "Andel behöriga" and b["share"]["unit"] == "andel (0–1)"
    assert "dold" in b["share_status"]["description"] and "saknas" in b["share_status"]["description"]
    assert pl.read_csv(tmp_path / "b.csv").columns == ["district", "share", "share_status"]


def test_readable_tells_hidden_from_missing_and_shows_percentages() -> None:
    shown = {r["district"]: r for r in readable(_protected(), percent=["share"]).iter_rows(named=True)}
    assert shown["A"]["share"] == "25,0\u00a0%" and shown["B"]["share"] == "dold"
    assert shown["C"]["mean_merit"] == "saknas" and shown["A"]["mean_merit"] == "201,5"
    assert shown["B"]["n"] == "dold" and shown["A"]["n"] == "40"
