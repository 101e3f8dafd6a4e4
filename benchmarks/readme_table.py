"""Write the README's speed table from the benchmark results (never by hand).

    python -m benchmarks.readme_table          # rewrites the table between the markers in README.md

For each scale, the newest `benchmarks/results/<scale>-<date>.json` that `benchmarks.run` wrote.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
README = HERE.parent / "README.md"
START, END = "<!-- speed-table: written by python -m benchmarks.readme_table -->", "<!-- /speed-table -->"
SCALES = ["tiny", "demo", "city", "country"]


def _latest(scale: str) -> dict | None:
    found = sorted(HERE.glob(f"results/{scale}-[0-9]*.json"))
    return json.loads(found[-1].read_text()) if found else None


def _stage(r: dict, name: str) -> str:
    s = r["stages"].get(name)
    if not s:
        return "–"
    ratio = f", {s['ratio_to_floor']:.2f}× floor" if name == "ingest" else ""
    return f"{s['seconds']:,.1f} s{ratio}, {s['peak_rss_mb']:,} MB"


def table() -> str:
    lines = [
        "| scale | records, raw | parse floor (1 core) | ingest | build | report | nothing new | new year (alone) "
        "| load avg |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for scale in SCALES:
        r = _latest(scale)
        if r is None:
            continue
        st = r["stages"]
        again = st.get("ingest again, nothing new")
        new, alone = st.get("ingest a new year"), st.get("that year alone")
        inc = f"{new['seconds']:,.1f} s ({alone['seconds']:,.1f} s)" if new and alone else "–"
        nothing = f"{again['seconds']:,.1f} s" if again else "–"
        span = " (one school year)" if r.get("one_year") else ""
        lines.append(
            f"| {scale}{span} ({r['date']}) | {r['floor']['records']:,}, {r['raw_mb']:,} MB "
            f"| {r['floor']['seconds']:,.1f} s "
            f"| {_stage(r, 'ingest')} | {_stage(r, 'build')} | {_stage(r, 'report')} "
            f"| {nothing} | {inc} "
            f"| {r['load_before'][0]:.1f} → {r['load_after'][0]:.1f} |"
        )
    return "\n".join(lines)


def main() -> int:
    text = README.read_text(encoding="utf-8")
    if START not in text or END not in text:
        print(f"README.md has no {START} … {END} markers", file=sys.stderr)
        return 1
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
    README.write_text(pattern.sub(lambda _: f"{START}\n{table()}\n{END}", text), encoding="utf-8")
    print(table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
