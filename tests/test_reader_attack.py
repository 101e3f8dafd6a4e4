"""An outside reader's attack (tests/reader_attack.py) on everything a tiny demo store publishes:
the full reports for two years, two district reports that are siblings (one district, and it
with a second), and the same year at min_cell 37 in another folder. Nothing may be recoverable
more narrowly than min_cell."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from pipelines.demo.world import write_demo
from pipelines.ingest.load import ingest
from pipelines.transform.build import build

from .reader_attack import attack


@pytest.mark.e2e
@pytest.mark.skipif(
    not os.environ.get("PPSS_ATTACK"),
    reason="an attack on five publications takes 10-30 minutes on two cores: `make attack` runs it",
)
def test_reader_attack_finds_nothing(tmp_path, monkeypatch) -> None:
    from pipelines.report import render

    monkeypatch.setattr(render, "write_pdf", lambda html, pdf: None)  # the PDF adds no number
    raw, store = tmp_path / "raw", tmp_path / "ppss.duckdb"
    write_demo(raw, seed=11, scale="tiny")
    assert not ingest(raw, store).rejected
    build(store)
    out, out37 = tmp_path / "reports", tmp_path / "r37"
    published = []

    def report(year: int, folder: Path, **kw) -> None:
        try:
            render.run_report(year, store, folder, **kw)
            published.append((year, folder, kw))
        except render.ReportRefused:  # refused: nothing is published
            pass

    report(2016, out)
    report(2015, out)
    rows = list(csv.reader((out / "2016" / "tables" / "enrolled.csv").read_text(encoding="utf-8").splitlines()[2:]))
    districts = sorted(r[0] for r in rows if r and r[0] != "Totalt")
    report(2016, out, districts=districts[:1])
    report(2016, out, districts=districts[:2])
    report(2016, out37, min_cell=37)
    # a refused report publishes nothing, which is safe; the attack reads whatever was written
    assert published, "no report was published"

    findings, stats, a = attack([out, out37], {out37: 37})
    assert not a.r.contradictions, a.r.contradictions[:5]
    assert sum(s["hidden"] for s in stats.values()) > 0  # the attack saw hidden cells
    assert not findings, "\n".join(
        f"{f.kind} [{f.lo}, {f.hi}] {f.label} ({f.relation}) @ {f.publication}" for f in findings
    )
