"""What every section shares: the report's parameters and store, and how a section displays."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from IPython.display import HTML, Markdown, display

from pipelines.analysis.followup import DEFAULT_ABSENCE_THRESHOLD
from pipelines.report.export import export

DATA_DIR = "data"  # beside the report's HTML: the downloads for analysts


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


def downloads(ctx: Context, frames: dict[str, Any], caption: str) -> str:
    """Write each protected frame for analysts (`<out>/data/<name>.csv`, tidy, and `.xlsx` for
    Excel, with `datakatalog.csv`; pipelines.report.downloads) and return the links to them."""
    if ctx.out_dir is None or not frames:
        return ""
    from pipelines.report.downloads import write_downloads

    links = []
    for name, frame in frames.items():
        csv, xlsx, _ = write_downloads(name, frame, caption, ctx.out_dir / DATA_DIR)
        links.append(
            f'<a href="{DATA_DIR}/{csv.name}" download>{name}.csv</a> · '
            f'<a href="{DATA_DIR}/{xlsx.name}" download>{name}.xlsx</a>'
        )
    return (
        '<p class="downloads">Ladda ner uppgifterna: '
        + " · ".join(links)
        + f' (<a href="{DATA_DIR}/datakatalog.csv">datakatalog</a>)</p>'
    )


def _caption(html: str) -> str:
    m = re.search(r"<caption>(.*?)</caption>", html, re.S)
    return re.sub(r"<[^>]+>", "", m.group(1)).strip() if m else ""


def table(ctx: Context, name: str, html: str, frames: dict[str, Any] | None = None) -> None:
    """Display a protected table, write the same cells to <tables_dir>/<name>.csv, and the
    protected frames behind it as downloads linked beside it."""
    links = downloads(ctx, frames if frames is not None else {}, _caption(html))
    display(HTML(export(name, html, ctx.tables_dir) + links))


def chart(c: Any, ctx: Context | None = None, frames: dict[str, Any] | None = None) -> None:
    """Display a chart, with the protected frames it draws as downloads beside it."""
    display(c)
    if ctx is not None and frames:
        # a chart hidden whole (charts.NoData) still names what its downloads hold
        title = chart_title(c.to_dict()) if hasattr(c, "to_dict") else str(getattr(c, "title", ""))
        links = downloads(ctx, frames, title)
        if links:
            display(HTML(links))


def chart_title(spec: dict) -> str:
    """A chart's title, wherever Vega-Lite holds it: on top, or on the first layer or inner
    spec that has one (a layered chart keeps it on its layers)."""
    title = spec.get("title")
    if title:
        text = title.get("text", "") if isinstance(title, dict) else title
        return " ".join(text) if isinstance(text, list) else str(text)
    for inner in [*spec.get("layer", []), *([spec["spec"]] if isinstance(spec.get("spec"), dict) else [])]:
        if text := chart_title(inner):
            return text
    return ""


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
