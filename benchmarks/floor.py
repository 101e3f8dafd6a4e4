"""The parse floor: every input file read once on one core, extracting each record's fields.

Grade XML with lxml `iterparse` (each grade element's child texts into a dict, each pupil
cleared once read), SS 12000 JSON with `orjson` (each record's fields and its nested
objects' fields visited), the register with polars/fastexcel. Nothing is validated,
pseudonymised or stored: this is what reading the delivery costs at the least, and
`make bench` states every stage as a ratio to it.

    python -m benchmarks.floor RAW_DIR      # prints {"seconds": ..., "records": ..., "bytes": ...}
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import orjson
import polars as pl
from lxml import etree

GRADE_TAGS = ("ämnesbetyg", "kursbetyg")


def _xml(path: Path) -> int:
    n = 0
    events = etree.iterparse(str(path), tag="{*}elev", resolve_entities=False, no_network=True)
    for _, elev in events:
        for el in elev:
            if el.tag.rpartition("}")[2] in GRADE_TAGS:
                {c.tag: c.text for c in el}
                n += 1
        elev.clear()
        while elev.getprevious() is not None:
            del elev.getparent()[0]
    return n


def _visit(value: object) -> None:
    if isinstance(value, dict):
        for v in value.values():
            _visit(v)
    elif isinstance(value, list):
        for v in value:
            _visit(v)


def _json(path: Path) -> int:
    records = orjson.loads(path.read_bytes())["data"]
    for r in records:
        _visit(r)
    return len(records)


def _register(path: Path) -> int:
    if path.suffix.lower() == ".xlsx":
        return pl.read_excel(path).height
    return pl.read_csv(path.read_bytes().decode("cp1252", "replace").encode(), separator=";", infer_schema=False).height


def floor(raw: Path) -> dict[str, float]:
    records = size = 0
    start = time.perf_counter()
    for path in sorted(p for p in Path(raw).rglob("*") if p.is_file()):
        name = path.name.lower()
        if name.endswith(".xml"):
            records += _xml(path)
        elif name.endswith(".json") and name.startswith(("persons", "organisations", "attendance")):
            records += _json(path)
        elif name.startswith("ppss") and name.endswith((".xlsx", ".csv")):
            records += _register(path)
        elif name.startswith("skolenheter"):
            records += pl.read_csv(path, separator=";", infer_schema=False).height
        else:
            continue
        size += path.stat().st_size
    return {"seconds": round(time.perf_counter() - start, 2), "records": records, "bytes": size}


if __name__ == "__main__":
    print(json.dumps(floor(Path(sys.argv[1]))))
