"""The yearly report, one module per section: what it computes and registers with the
disclosure layer, and what it shows (prose, tables, charts) once everything is protected.

A section is a module with
- `TITLE`: its heading (numbered in `SECTIONS` order);
- `register(pub, ctx)`: compute the section's figures and register each published frame
  with its pupils (`pipelines.analysis.disclosure`); nothing is shown yet;
- `show(prot, ctx)`: display the section from protected frames only (`prot[name]`).

The notebook registers every section, protects them together with every earlier
publication of the store, then shows them in order, one cell per section. Adding a
section: write the module, list it in `SECTIONS`, add its cell to the notebook
(docs/architecture.md).
"""

from __future__ import annotations

from pipelines.report.sections import (
    attendance,
    closing,
    eligibility,
    enrolment,
    evaluation,
    followup_2015,
    pass_change,
    quality,
    subgroups,
    summary,
    vocabulary,
)
from pipelines.report.sections.base import Context, show_section

# In the report's order; `summary` is shown first but reads the others' protected figures.
SECTIONS = {
    "summary": summary,
    "quality": quality,
    "enrolment": enrolment,
    "vocabulary": vocabulary,
    "attendance": attendance,
    "pass_change": pass_change,
    "eligibility": eligibility,
    "evaluation": evaluation,
    "subgroups": subgroups,
    "followup_2015": followup_2015,
    "closing": closing,
}


def register_all(pub, ctx: Context) -> None:
    """Every section's figures, registered with one publication (protected together)."""
    for module in SECTIONS.values():
        module.register(pub, ctx)


def show(name: str, prot, ctx: Context) -> None:
    show_section(SECTIONS[name], prot, ctx)


__all__ = ["SECTIONS", "Context", "register_all", "show"]
