"""`reports/index.html`: every report on disk and the years side by side.

Each report folder holds `report.json` (its parameters and the state of the store it was
written from, `run_report`). The overview lists every report found under `reports/` (years,
district reports, parameter sets), with its PDF, downloads and the validation Data Docs, and
puts the headline effects of every full report in one table and one chart, each year as
its own report states it: the numbers come from the reports' `effects.csv` (already
protected, hidden numbers empty), so the overview publishes nothing new. The chart is a
static SVG (vl-convert), so the page opens offline without scripts.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipelines.analysis.suppress import fmt_num
from pipelines.labels import VERDICT

STATE_FILE = "report.json"
OUTCOMES = {
    "absence_rate": "Frånvaro (procentenheter)",
    "share_passed_change": "Andel godkända ämnen (procentenheter)",
    "eligible_vocational": "Behörighet till yrkesprogram (procentenheter)",
}


@dataclass(frozen=True)
class Report:
    folder: Path
    year: int
    districts: tuple[str, ...]
    min_cell: int | None
    written: str

    @property
    def html(self) -> Path:
        return self.folder / f"uppfoljning_{self.year}.html"


def state(store: Path, **params: object) -> dict:
    """What a report was written from: its parameters and the store's identity (meta rows)."""
    import duckdb

    with duckdb.connect(str(store), read_only=True) as con:
        meta = dict(con.execute("select key, value from meta").fetchall())
    return {"params": params, "store": {k: meta.get(k) for k in ("built_at", "last_ingest_id", "key_fingerprint")}}


def write_state(folder: Path, st: dict) -> None:
    stamped = {**st, "written": dt.datetime.now().astimezone().isoformat(timespec="seconds")}
    (folder / STATE_FILE).write_text(json.dumps(stamped, ensure_ascii=False, indent=1), encoding="utf-8")


def same_state(folder: Path, st: dict) -> bool:
    """A report in `folder` written from the same store state with the same parameters, whole."""
    path = folder / STATE_FILE
    if not path.exists():
        return False
    old = json.loads(path.read_text(encoding="utf-8"))
    html_files = list(folder.glob("uppfoljning_*.html"))
    return old.get("params") == st["params"] and old.get("store") == st["store"] and bool(html_files)


def scan(out_dir: Path) -> list[Report]:
    found = []
    for path in sorted(Path(out_dir).glob("**/" + STATE_FILE)):
        try:
            st = json.loads(path.read_text(encoding="utf-8"))
            p = st["params"]
            found.append(
                Report(path.parent, int(p["year"]), tuple(p.get("districts") or ()), p.get("min_cell"), st["written"])
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not a report this version wrote
    return [r for r in found if r.html.exists()]


def side_by_side(reports: list[Report]) -> pl.DataFrame:
    """Each full report's headline effects (one row per year and outcome)."""
    rows = []
    for r in reports:
        effects = r.folder / "effects.csv"
        if r.districts or not effects.exists():
            continue
        df = pl.read_csv(effects, infer_schema_length=None)
        for e in df.filter(pl.col("group").fill_null("") == "").iter_rows(named=True):
            rows.append(
                {
                    "year": r.year,
                    "outcome": OUTCOMES.get(e["outcome"], e["outcome"]),
                    "estimate": None if e["estimate"] is None else 100 * e["estimate"],
                    "lo": None if e["ci_low"] is None else 100 * e["ci_low"],
                    "hi": None if e["ci_high"] is None else 100 * e["ci_high"],
                    "n": e["n_enrolled"],
                    "verdict": VERDICT.get(e.get("verdict") or "none", e.get("verdict") or ""),
                }
            )
    schema = {
        "year": pl.Int64,
        "outcome": pl.String,
        "estimate": pl.Float64,
        "lo": pl.Float64,
        "hi": pl.Float64,
        "n": pl.Int64,
        "verdict": pl.String,
    }
    return pl.DataFrame(rows, schema=schema).sort("outcome", "year")


def chart_svg(df: pl.DataFrame) -> str:
    """Estimates with their 95 % intervals, year by year, one panel per outcome (static SVG)."""
    shown = df.filter(pl.col("estimate").is_not_null())
    if shown.is_empty():
        return ""
    import altair as alt
    import vl_convert

    # the data come with the facet, so each panel gets its own outcome's rows
    base = alt.Chart().encode(x=alt.X("year:O", title="Uppföljningsår", axis=alt.Axis(labelAngle=0)))
    bars = base.mark_rule(color="#555").encode(y=alt.Y("lo:Q", title="Effekt (procentenheter)"), y2="hi:Q")
    points = base.mark_point(filled=True, size=70, color="#1f5f8b").encode(y="estimate:Q")
    zero = alt.Chart().mark_rule(color="#999", strokeDash=[4, 3]).encode(y=alt.datum(0))
    layered = alt.layer(bars, points, zero).properties(width=220, height=170)
    spec = layered.facet(
        column=alt.Column("outcome:N", title=None, header=alt.Header(labelFontSize=12)), data=shown.to_pandas()
    ).properties(title="Effekt jämfört med liknande elever, år för år (95 % konfidensintervall)")
    version = alt.SCHEMA_VERSION.lstrip("v").rsplit(".", 1)[0]  # "6.4": vl-convert names versions so
    return vl_convert.vegalite_to_svg(spec.to_dict(), vl_version=version)


def _pp(v: float | None) -> str:
    return ".." if v is None else fmt_num(v, 1)


def _interval(lo: float | None, hi: float | None) -> str:
    return ".." if lo is None or hi is None else f"{_pp(lo)} till {_pp(hi)}"


def write_overview(out_dir: Path) -> Path:
    out_dir = Path(out_dir)
    reports = sorted(scan(out_dir), key=lambda r: (-r.year, bool(r.districts), r.districts, r.min_cell or 0))
    rows = []
    for r in reports:
        rel = lambda p: html.escape(p.relative_to(out_dir).as_posix())  # noqa: E731
        links = [f'<a href="{rel(r.html)}">rapport</a>']
        if r.html.with_suffix(".pdf").exists():
            links.append(f'<a href="{rel(r.html.with_suffix(".pdf"))}">PDF</a>')
        if (r.folder / "data").exists():
            links.append(f'<a href="{rel(r.folder / "data" / "datakatalog.csv")}">data</a>')
        if (r.folder / "effects.csv").exists():
            links.append(f'<a href="{rel(r.folder / "effects.csv")}">effects.csv</a>')
        what = ", ".join(r.districts) if r.districts else "Hela staden"
        rows.append(
            f"<tr><td>{r.year}</td><td>{html.escape(what)}</td><td>{r.min_cell or '.'}</td>"
            f"<td>{' · '.join(links)}</td><td>{html.escape(r.written[:16].replace('T', ' '))}</td></tr>"
        )
    years = side_by_side(reports)
    year_rows = "".join(
        f"<tr><td>{html.escape(e['outcome'])}</td><td>{e['year']}</td><td class='num'>{_pp(e['estimate'])}</td>"
        f"<td class='num'>{_interval(e['lo'], e['hi'])}</td>"
        f"<td class='num'>{e['n'] if e['n'] is not None else '..'}</td>"
        f"<td>{html.escape(e['verdict'])}</td></tr>"
        for e in years.iter_rows(named=True)
    )
    docs = out_dir / "validation" / "index.html"
    docs_link = (
        f'<p><a href="{html.escape(docs.relative_to(out_dir).as_posix())}">Valideringsrapport'
        " (Data Docs)</a> för de inlästa filerna.</p>"
        if docs.exists()
        else ""
    )
    built = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M")
    page = f"""<!DOCTYPE html>
<html lang="sv"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Uppföljning av PPSS: rapporter</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em;color:#222}}
table{{border-collapse:collapse;width:100%;margin:1em 0}}
td,th{{text-align:left;border-bottom:1px solid #ddd;padding:.4em .6em}}
td.num{{text-align:right;font-variant-numeric:tabular-nums}} .chart svg{{max-width:100%;height:auto}}</style>
</head><body><h1>Uppföljning av PPSS: rapporter</h1>
<p>Sammanställd {built}. Alla rapporter i den här mappen. Varje rapport har granskats tillsammans med allt som
tidigare publicerats ur samma databas, så att ingen uppgift om enskilda elever kan räknas fram.</p>
{docs_link}
<h2>År för år</h2>
<p>De huvudsakliga effekterna jämfört med liknande elever, så som varje års rapport anger dem (.. där
rapporten döljer uppgiften). Ett senare års rapport bygger på fler elever och mer data; siffrorna för ett år
ändras inte i efterhand.</p>
<div class="chart">{chart_svg(years)}</div>
<table><thead><tr><th>Utfall</th><th>År</th><th>Effekt</th><th>95 % KI</th><th>Elever</th><th>Slutsats</th></tr></thead>
<tbody>{year_rows}</tbody></table>
<h2>Rapporter</h2>
<table><thead><tr><th>År</th><th>Omfattning</th><th>Minsta antal</th><th>Filer</th><th>Skriven</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table>
</body></html>
"""
    index = out_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
