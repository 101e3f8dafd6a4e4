from __future__ import annotations

import pytest


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
