from __future__ import annotations

import os
import shutil

import pytest

E2E_YEAR = "2016"


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.fixture(autouse=True, scope="session")
def ppss_home(tmp_path_factory):
    """data/ and reports/ of every test in a temporary folder, never the repository's."""
    home = tmp_path_factory.mktemp("ppss_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PPSS_HOME", str(home))
        yield home


@pytest.fixture(scope="session")
def run(tmp_path_factory, ppss_home):
    """One end-to-end run for every test that needs it: tiny demo data, `ppss run` (ingest,
    build, the 2016 report with its PDF)."""
    from pipelines.cli import main
    from pipelines.demo.world import write_demo

    root = tmp_path_factory.mktemp("e2e")
    raw, store, out = root / "raw", root / "ppss.duckdb", root / "reports"
    write_demo(raw, seed=11, scale="tiny")
    status = main(["run", "--raw", str(raw), "--year", E2E_YEAR, "--store", str(store), "--out", str(out)])
    return {"root": root, "raw": raw, "store": store, "out": out, "status": status}


def chromium_or_skip() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing on CI (.ci/run installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return exe


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium (Debian's, driven by Playwright) for every browser test."""
    from playwright.sync_api import sync_playwright

    exe = chromium_or_skip()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()
