"""Paths and settings. Nothing happens at import time: callers ask for what they need."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
SQL_DIR = PACKAGE_DIR / "sql"


def project_root() -> Path:
    """The repository root: PPSS_HOME if set, else the folder holding the package."""
    env = os.environ.get("PPSS_HOME")
    return Path(env).resolve() if env else PACKAGE_DIR.parent


@dataclass(frozen=True)
class Paths:
    root: Path

    @property
    def raw(self) -> Path:
        return self.root / "data" / "raw"

    @property
    def store(self) -> Path:
        return self.root / "data" / "processed" / "ppss.duckdb"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def expectations(self) -> Path:
        return self.root / "expectations"

    @property
    def notebooks(self) -> Path:
        return self.root / "notebooks"


def paths() -> Paths:
    return Paths(project_root())


# Grade exports hold every school form; the follow-up reads grundskola only (data contract 1.3).
GRADE_SCHOOL_FORM = "GR"
# Rows per Great Expectations batch: bounds memory whatever the file size.
VALIDATION_BATCH_ROWS = 200_000


class ConfigError(RuntimeError):
    """A usage or configuration problem (exit status 1)."""
