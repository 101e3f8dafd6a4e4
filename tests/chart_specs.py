"""The Vega-Lite specs of charts as published: in a report's HTML (one `<script>` per figure)
and in an executed notebook (the saved state of its `alt.JupyterChart` widgets), and the
check that every category a chart draws has a place in its colour scale."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

SPEC_SCRIPT = re.compile(r'<script\b[^>]*\bclass="ppss-chart-spec"[^>]*>(.*?)</script>', re.S)
DOMAIN_CHANNELS = ("color", "fill", "stroke", "strokeDash", "shape")


def report_specs(html: str) -> list[dict]:
    return [json.loads(m) for m in SPEC_SCRIPT.findall(html)]


def notebook_specs(nb: dict) -> list[dict]:
    """Specs of the charts an executed notebook shows (nbclient saves widget state)."""
    state = nb.get("metadata", {}).get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    specs = [m["state"]["spec"] for m in state.get("state", {}).values() if isinstance(m["state"].get("spec"), dict)]
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            for mime, data in out.get("data", {}).items():
                if mime.startswith("application/vnd.vegalite"):
                    specs.append(data)
    return specs


def rows(spec: dict) -> list[dict]:
    """Every data row a spec carries (named datasets and inline values, at any depth)."""
    out = [r for values in spec.get("datasets", {}).values() for r in values]

    def walk(node: object) -> None:
        if isinstance(node, dict):
            data = node.get("data")
            if isinstance(data, dict) and isinstance(data.get("values"), list):
                out.extend(r for r in data["values"] if isinstance(r, dict))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk({k: v for k, v in spec.items() if k != "datasets"})
    return out


def _encodings(node: object) -> Iterator[dict]:
    if isinstance(node, dict):
        if isinstance(node.get("encoding"), dict):
            yield node["encoding"]
        for v in node.values():
            yield from _encodings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _encodings(v)


def outside_domain(spec: dict) -> list[str]:
    """Categories in a chart's data that its explicit scale domain lacks: Vega draws them
    without a colour (or not at all) while the legend still lists the domain."""
    data = rows(spec)
    problems = []
    for enc in _encodings(spec):
        for channel in DOMAIN_CHANNELS:
            ch = enc.get(channel)
            if not isinstance(ch, dict) or "field" not in ch or ch.get("type") not in ("nominal", "ordinal"):
                continue  # a continuous scale's domain is a range, not a list of categories
            domain = (ch.get("scale") or {}).get("domain")
            if not isinstance(domain, list):
                continue
            values = {r[ch["field"]] for r in data if r.get(ch["field"]) is not None}
            missing = sorted(map(str, values - set(domain)))
            if missing:
                problems.append(f"{channel} {ch['field']}: {missing} not in {domain}")
    return problems


def fields(spec: dict) -> set[str]:
    """The data's column names (which a reader should never see in a tooltip)."""
    return {k for r in rows(spec) for k in r}
