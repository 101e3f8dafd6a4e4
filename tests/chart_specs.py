"""The Vega-Lite specs of charts as published: in a report's HTML (one `<script>` per figure)
and in an executed notebook (the saved state of its `alt.JupyterChart` widgets), the check
that every category a chart draws has a place in its colour scale, and the facet cells of a
drawn chart with what each of them draws."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
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


SVG = "{http://www.w3.org/2000/svg}"


def _classes(el: ET.Element) -> list[str]:
    return (el.get("class") or "").split()


def _at(el: ET.Element) -> tuple[float, float]:
    m = re.match(r"translate\(([-\d.e]+),\s*([-\d.e]+)\)", el.get("transform") or "")
    return (round(float(m[1])), round(float(m[2]))) if m else (0, 0)


def _header_labels(root: ET.Element, role: str) -> dict[float, str]:
    """A facet's header labels by their position (x of a column's, y of a row's)."""
    axis = 0 if "column" in role else 1
    out = {}
    for group in root.iter(SVG + "g"):
        if role in _classes(group):
            for item in group.findall(SVG + "g"):
                # the header's label (Vega draws it as the item's title), not an axis it holds
                labels = [m for m in item.iter(SVG + "g") if "role-title-text" in _classes(m)]
                text = " ".join("".join(t.itertext()) for m in labels for t in m.iter(SVG + "text")).strip()
                if text:
                    out[_at(item)[axis]] = text
    return out


def facet_cells(svg: str) -> list[dict]:
    """Each facet cell of a drawn chart (Vega's SVG, static or live): the headers above and
    beside it, and the drawn items of its marks, each with its accessible label (Vega's
    "title: value; ..." of the item's encoding and tooltip) and its mark's class."""
    root = ET.fromstring(svg.replace("&nbsp;", "\u00a0"))  # a browser's outerHTML writes the HTML entity
    columns = _header_labels(root, "role-column-header") | _header_labels(root, "role-column-footer")
    rows_ = _header_labels(root, "role-row-header")
    cells = []
    for scope in root.iter(SVG + "g"):
        if not {"role-scope", "cell"} <= set(_classes(scope)):
            continue
        for cell in scope.findall(SVG + "g"):
            x, y = _at(cell)
            items = [
                {"mark": _classes(mark)[0], "label": item.get("aria-label") or ""}
                for mark in cell.iter(SVG + "g")
                if "role-mark" in _classes(mark)
                for item in mark
                if item.tag != SVG + "g"
            ]
            cells.append({"column": columns.get(x), "row": rows_.get(y), "items": items})
    return cells


def label_fields(label: str) -> dict[str, str]:
    """An item's accessible label ("Mått: X; Kön: Y; ...") as a dict."""
    return dict(part.split(": ", 1) for part in label.split("; ") if ": " in part)
