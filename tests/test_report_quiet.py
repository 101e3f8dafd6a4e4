"""`ppss report` as a user runs it, several times and two at once (each kernel then competes
for the cores): every run exits 0, shows its progress section by section with the time taken
on stdout, and writes nothing at all on stderr."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from .conftest import E2E_YEAR, chromium_or_skip

pytestmark = pytest.mark.e2e
ROUNDS, AT_ONCE = 2, 2  # bounded: four reports, two at a time


def test_reports_run_again_and_again_print_nothing_on_stderr(run, tmp_path) -> None:
    chromium_or_skip()  # without it the PDF step says so on stderr, by design
    for r in range(ROUNDS):
        args = [sys.executable, "-m", "pipelines.cli", "report", "--year", E2E_YEAR, "--store", str(run["store"])]
        procs = [
            subprocess.Popen(
                [*args, "--out", str(tmp_path / f"out{r}{i}")],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(AT_ONCE)
        ]
        for p in procs:
            out, err = p.communicate(timeout=900)
            assert p.returncode == 0, err
            assert err == "", f"round {r}: stderr of a successful report:\n{err}"
            lines = out.splitlines()
            assert lines[0].startswith(f"report {E2E_YEAR}:") and "starting the kernel" in lines[0]
            fixed = ("starting the kernel", "kernel started", "writing the HTML page", "printing the PDF")
            sections = [
                ln for ln in lines if re.match(rf"report {E2E_YEAR}: +\d+\.\d s  ", ln) and not ln.endswith(fixed)
            ]
            assert len(sections) >= 5, out
            assert any("writing the HTML page" in ln for ln in lines) and any("printing the PDF" in ln for ln in lines)
            assert re.match(r"report: .*uppfoljning_\d{4}\.html and uppfoljning_\d{4}\.pdf \(\d+\.\d s\)$", lines[-1])
