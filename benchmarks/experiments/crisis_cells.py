"""Issue 21 (crisis): the attendance estimate's pair differences split by the balancing step
that found each enrolled pupil's comparison (own cell; `|*` all årskurser of the month;
`|**` the core covariates only; `|+`, `|*+` the steps of issue21-crisis2.patch), over cached
worlds (`python -m benchmarks.methods ... --cache DIR`).

    python benchmarks/experiments/crisis_cells.py crisis 1000 1010 /tmp/wc-cache
"""

import sys

import polars as pl

from pipelines.analysis.estimator import pair_differences
from pipelines.analysis.followup import open_store
from pipelines.analysis.sample import build_sample

world, first, last, cache = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
step = (
    pl.when(pl.col("cell").str.ends_with("|*+"))
    .then(pl.lit("month, 0.25 SD"))
    .when(pl.col("cell").str.ends_with("|**"))
    .then(pl.lit("core only"))
    .when(pl.col("cell").str.ends_with("|*"))
    .then(pl.lit("month"))
    .when(pl.col("cell").str.ends_with("|+"))
    .then(pl.lit("own cell, 0.25 SD"))
    .otherwise(pl.lit("own cell"))
    .alias("step")
)
parts = []
for seed in range(first, last):
    con = open_store(f"{cache}/{world}-none-small-{seed}/store.duckdb")
    try:
        a = build_sample(con, 2016).analytic["absence_rate"]
    finally:
        con.close()
    parts.append(pair_differences(a).with_columns(step).select("step", "d", "y", "y_c"))
d = pl.concat(parts)
print(d.group_by("step").agg(pl.len(), pl.col("d").mean(), pl.col("y").mean(), pl.col("y_c").mean()).sort("step"))
print("all pupils", d["d"].mean())
