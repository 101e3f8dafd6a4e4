"""What every section shares: the report's parameters and store, and how a section displays."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from IPython.display import HTML, Markdown, display

from pipelines.analysis.followup import DEFAULT_ABSENCE_THRESHOLD
from pipelines.report.export import export


@dataclass
class Context:
    """One report run: its parameters, the store connection, and what sections hand on
    (the evaluation sample, the cross-check's process) in `state`."""

    con: Any
    year: int
    min_cell: int
    districts: list[str] | None = None
    absence_threshold: float = DEFAULT_ABSENCE_THRESHOLD
    tables_dir: Path | None = None
    out_dir: Path | None = None
    worker: Any = None
    state: dict[str, Any] = field(default_factory=dict)


def markdown(text: str) -> None:
    display(Markdown(text))


def table(ctx: Context, name: str, html: str) -> None:
    """Display a protected table and write the same cells to <tables_dir>/<name>.csv."""
    display(HTML(export(name, html, ctx.tables_dir)))


def chart(c: Any) -> None:
    display(c)


def heading(module: ModuleType) -> str:
    from pipelines.report.sections import SECTIONS

    numbered = [m for m in SECTIONS.values() if getattr(m, "NUMBERED", True)]
    if module in numbered:
        return f"## {numbered.index(module) + 1}. {module.TITLE}"
    return f"## {module.TITLE}"


def show_section(module: ModuleType, prot: Any, ctx: Context) -> None:
    if getattr(module, "TITLE", None):
        markdown(heading(module) + ("\n\n" + module.INTRO if getattr(module, "INTRO", "") else ""))
    module.show(prot, ctx)
