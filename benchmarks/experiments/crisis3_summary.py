"""Print the third crisis round's tables (README, issue 21) from methods result files:
`python benchmarks/experiments/crisis3_summary.py FILE... [--elig]`."""

import json
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str]) -> None:
    for f in [a for a in argv if not a.startswith("--")]:
        d = json.loads(Path(f).read_text())
        print(f"\n### {Path(f).name}  variant: {d['args'].get('variant', '')}")
        print("| kind | outcome | n | bias | bias@est | cover | cover@est | stated | withheld | in est |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for r in d["summary"]:
            if r["outcome"] == "eligible_vocational" and "--elig" not in argv:
                continue
            w, e = r["world"], r["outcome"]
            kind, eff = w.split(", ") if ", " in w else ("demo", w)
            runs = [
                x[e]
                for x in d["runs"]
                if x.get("world", "demo") == kind and x["effects"] == eff and np.isfinite(x[e]["estimate"])
            ]
            cover_est = np.mean([x["ci_low"] <= x["truth_estimand"] <= x["ci_high"] for x in runs])
            stated = sum(x["verdict"] == "effect" for x in runs)
            name = e.replace("_change", "").replace("_rate", "")
            print(
                f"| {w} | {name} | {r['worlds']} | {r['bias'] * 100:+.2f} | {r['bias_estimand'] * 100:+.2f} "
                f"| {r['coverage']:.0%} | {cover_est:.0%} | {stated}/{len(runs)} | {r['withheld']:.0%} "
                f"| {r['share_in_estimate']:.0%} |"
            )


if __name__ == "__main__":
    main(sys.argv[1:])
