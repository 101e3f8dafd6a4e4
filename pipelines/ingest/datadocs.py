"""The validation report (`reports/validation/`) as a data steward reads it, in Swedish.

GX renders one page per validation run; this module makes those pages work offline, puts a
Swedish summary above GX's technical view, and writes the index from the store itself: every
file of every delivery (rejected and removed ones included, with their reason), the latest
state first, with the same counts and rule ids as `ppss status`. The index is written again
after every ingest, so it is cumulative, and pages of earlier ingests stay where they are.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import re
import shutil
from pathlib import Path

from lxml import etree
from lxml import html as lxml_html

from pipelines.codes import LoadStatus
from pipelines.config import PACKAGE_DIR, REPO_DIR

RUNS_FILE = "ppss-runs.json"  # every run's page, files and ingest, kept across ingests
_DONE = "<!-- ppss: offline -->"

STATUS_SV = {
    LoadStatus.LOADED: "inläst",
    LoadStatus.REJECTED: "avvisad",
    LoadStatus.SUPERSEDED: "ersatt av en nyare version",
    LoadStatus.REMOVED: "borttagen ur leveransen",
}


def _e(text: object) -> str:
    return html.escape(str(text))


# --- GX's pages: offline, without dead controls or GX internals, with a Swedish summary ------------

_REMOTE_TAG = re.compile(r'<(?:script|link)\b[^>]*?(?:src|href)="https?://[^"]*"[^>]*>(?:\s*</script>)?', re.I)
_REMOTE_IMG = re.compile(r'src="https?://[^"]*logo-long\.png[^"]*"')
_REMOTE_CSS_URL = re.compile(r"url\(\s*['\"]?https?://[^)]*\)", re.I)
_INLINE_JQUERY = re.compile(r"<script>(?:(?!</script>).)*\$[(.](?:(?!</script>).)*</script>", re.S)
_FOOTER = re.compile(r"<footer>.*?</footer>", re.S)
_ACTIONS = re.compile(
    r'<div class="card mb-3">\s*<div class="card-header p-2">\s*<strong>Actions</strong>.*?'
    r"Failed Only\s*</label>\s*</div>\s*</div>\s*</div>\s*</div>\s*</div>",
    re.S,
)


def _strip_gx(page_html: str) -> str:
    """Remove what does nothing offline or only speaks of GX itself: collapsible blocks opened by
    Bootstrap's jQuery ("Show more info": GX version, batch markers, `PandasDataFrame`)."""
    doc = lxml_html.document_fromstring(page_html)
    for toggle in doc.xpath('//a[@data-toggle="collapse"]'):
        block = next((a for a in toggle.iterancestors("div") if (a.get("id") or "").endswith("-parent")), None)
        target = block if block is not None else toggle
        target.getparent().remove(target)
    for button in doc.xpath("//button[@data-toggle]"):
        button.getparent().remove(button)
    return etree.tostring(doc, encoding="unicode", method="html", doctype="<!DOCTYPE html>")


def make_offline(docs_dir: Path, runs: list[dict] | None = None) -> None:
    """GX Data Docs load Bootstrap, jQuery and images from CDNs: drop those, style the pages locally.
    Without jQuery the inline scripts, the "Failed Only" filter and "Show more info" are dead, so
    they go too, as does GX's newsletter footer. Each validation page gets the Swedish summary of
    its file above GX's own view. Pages done by an earlier ingest are left as they are."""
    styles = docs_dir / "static" / "styles"
    styles.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PACKAGE_DIR / "static" / "datadocs-offline.css", styles / "offline.css")
    by_run = {r["run"]: r for r in runs or []}
    for page in docs_dir.rglob("*.html"):
        if page.name == "index.html" and page.parent == docs_dir:
            continue  # written from the store by write_index
        text = page.read_text(encoding="utf-8")
        if _DONE in text or 'class="container ppss-file"' in text:
            continue
        up = os.path.relpath(docs_dir, page.parent)
        text = _REMOTE_TAG.sub("", text)
        text = _REMOTE_IMG.sub(f'src="{up}/static/images/logo-long.png"', text)
        text = _REMOTE_CSS_URL.sub("none", text)
        # GX links the favicon one folder short of the site's root on validation pages.
        text = re.sub(r'href="[^"]*static/images/favicon\.ico"', f'href="{up}/static/images/favicon.ico"', text)
        text = _INLINE_JQUERY.sub("", text)
        text = _FOOTER.sub("", text)
        text = _ACTIONS.sub("", text)
        text = _strip_gx(text)
        text = text.replace("<html>", '<html lang="sv">', 1)
        text = text.replace("</head>", f'<link rel="stylesheet" href="{up}/static/styles/offline.css"></head>', 1)
        run = next((by_run[p] for p in page.relative_to(docs_dir).parts if p in by_run), None)
        if page.parent.name == "expectations" and page.parent.parent == docs_dir:
            box = _suite_box(page.stem, up)
            text = re.sub(r"(<body[^>]*>)", lambda m, box=box: m.group(1) + box, text, count=1)
        if run is not None:
            text = text.replace("Data asset: None", f"File: {_e(run['label'])}", 1)
            box = _file_box(run, up)
            text = re.sub(r"(<body[^>]*>)", lambda m, box=box: m.group(1) + box, text, count=1)
        page.write_text(_DONE + "\n" + text, encoding="utf-8")


def _file_box(run: dict, up: str) -> str:
    """What a data steward needs first, in Swedish: which file, when, how many records, which
    rules failed where. Counted as `ppss status` counts them: one per quarantined record."""
    issues = run.get("issues") or []
    places: dict[str, set[str]] = {}
    for rule, column, location in issues:
        places.setdefault(rule, set()).add(f"{location} ({column})" if column else location)
    unit = run.get("row_unit_sv") or "poster"
    rows = "".join(
        f"<tr><td><code>{_e(rule)}</code></td><td class=num>{len(where):,}</td><td>"
        + _e(", ".join(sorted(where)[:20]))
        + (" …" if len(where) > 20 else "")
        + "</td></tr>"
        for rule, where in sorted(places.items())
    )
    failed = (
        f"<table><thead><tr><th>Regel (som i <code>ppss status</code>)</th><th>Platser i karantän</th>"
        f"<th>Var i filen</th></tr></thead><tbody>{rows}</tbody></table>"
        if rows
        else "<p>Ingen rad bröt mot någon av filens egna regler.</p>"
    )
    return (
        f'<div class="container ppss-file"><p><a href="{_e(up)}/index.html">Alla filer</a></p>'
        f"<h1>{_e(run['label'])}</h1>"
        f"<p>Kontrollerad {_e(run.get('checked_at', ''))}. Kontrollerade rader: {run['rows']:,} "
        f"({_e(run.get('check_unit_sv', ''))}); antalen nedan räknar {_e(unit)}, som "
        "<code>ppss status</code>. Kontroller mellan filer (till exempel en elev som saknas i "
        "personexporten) görs om vid varje inläsning och visas av <code>ppss status</code>. "
        "Värden visas aldrig här: de kan vara personuppgifter.</p>"
        f"{failed}<p class=ppss-gx-note>Nedanför: Great Expectations egen vy av samma kontroll "
        "(teknisk, på engelska; kolumnnamnen är kontrollens, reglerna ovan är de som gäller).</p></div>"
    )


def _suite_box(suite: str, up: str) -> str:
    """A suite's rules by the ids quarantine and `ppss status` use, above GX's column-by-column view."""
    from pipelines.ingest.kinds import BY_NAME

    path = REPO_DIR / "expectations" / f"{suite}.json"
    if not path.exists():
        return ""
    rules = [e.get("meta") or {} for e in json.loads(path.read_text(encoding="utf-8")).get("expectations", [])]
    from pipelines.ingest.readers import READER_RULES
    from pipelines.rules.identity import IDENTITY_RULES

    def ids(m: dict) -> str:
        # A rule named by the value (the reader's or the identity check's finding) shows every id it can take.
        names = (
            READER_RULES
            if m.get("rule_from_value") == "reader"
            else IDENTITY_RULES
            if m.get("rule_from_value")
            else [m["rule"]]
        )
        return ", ".join(f"<code>{_e(n)}</code>" for n in names)

    rows = "".join(
        f"<tr><td>{ids(m)}</td><td>{_e(m.get('column', ''))}</td><td>{_e(m.get('message', ''))}</td>"
        f"<td>{'en inskrivning' if m.get('scope') == 'enrolment' else 'raden'}</td></tr>"
        for m in rules
        if m.get("rule")
    )
    label = BY_NAME[suite].label if suite in BY_NAME else suite
    return (
        f'<div class="container ppss-file"><p><a href="{_e(up)}/index.html">Alla filer</a></p>'
        f"<h1>Reglerna för {_e(label)}</h1><p>Regel-id är desamma som i lagrets <code>quarantine</code> och i "
        "<code>ppss status</code>; regler som läsaren själv prövar (datum, format, personuppgifter i fritext) "
        "står i datakontraktet. Texterna är på engelska, som i meddelandena.</p>"
        "<table><thead><tr><th>Regel</th><th>Kolumn i filen</th><th>Vad som prövas</th><th>I karantän</th></tr>"
        f"</thead><tbody>{rows}</tbody></table></div>"
    )


# --- The runs of every ingest, and the index ----------------------------------------------------------


def _page_of(docs_dir: Path, run: dict) -> str | None:
    pages = sorted((docs_dir / "validations" / run["suite"] / run["run"]).rglob("*.html"))
    return pages[-1].relative_to(docs_dir).as_posix() if pages else None


def record_runs(docs_dir: Path, runs: list[dict]) -> None:
    """Add this ingest's runs (with their page) to the runs file the index reads."""
    path = docs_dir / RUNS_FILE
    kept = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
    for run in runs:
        kept.append(
            {
                "ingest_id": run.get("ingest_id"),
                "files": run.get("files", []),
                "label": run["label"],
                "page": _page_of(docs_dir, run),
            }
        )
    path.write_text(json.dumps(kept, ensure_ascii=False, indent=1), encoding="utf-8")


def write_index(docs_dir: Path, store: Path) -> Path:
    """The index, from the store: every file version, the latest state first."""
    from pipelines.ingest.kinds import BY_NAME
    from pipelines.store import connect_readonly

    con = connect_readonly(store)
    try:
        files = con.execute("""
            select file_id, ingest_id, path, kind, status, rows_read, rows_loaded, rows_invalid, rows_held,
                   rows_unused, message, loaded_at
            from load_log order by file_id
        """).fetchall()
        rules = con.execute("""
            select file_id, rule, count(*) from quarantine where location <> 'whole file'
            group by all order by file_id, rule
        """).fetchall()
    finally:
        con.close()
    by_file: dict[int, list[str]] = {}
    for file_id, rule, n in rules:
        by_file.setdefault(file_id, []).append(f"{rule} ({n:,})")
    path = docs_dir / RUNS_FILE
    runs = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
    pages: dict[tuple[int, str], list[str]] = {}
    for r in runs:
        for shown in r["files"]:
            if r.get("page"):
                pages.setdefault((r["ingest_id"], shown), []).append(r["page"])
    latest = max((f[1] for f in files), default=0)
    when = {f[1]: f[11] for f in files}  # an ingest's time: when its last file was logged

    def row(f: tuple) -> str:
        file_id, ingest_id, shown, kind, status, read, loaded, invalid, held, unused, message, at = f
        k = BY_NAME.get(kind)
        links = pages.get((ingest_id, shown), [])
        name = (
            f'<a href="{_e(links[0])}">{_e(shown)}</a>'
            + "".join(f' <a href="{_e(p)}">del {i}</a>' for i, p in enumerate(links[1:], start=2))
            if links
            else _e(shown)
        )
        found = (
            _e(message)
            if status == LoadStatus.REJECTED
            else (", ".join(by_file.get(file_id, [])) or "inga")
            if status == LoadStatus.LOADED
            else _e(message or "")
        )
        mark = ' <span class="badge ppss-new">senaste körningen</span>' if ingest_id == latest else ""
        return (
            f'<tr class="ppss-{_e(status)}"><td>{name}</td><td>{_e(k.label if k else kind)}</td>'
            f"<td>{_e(STATUS_SV.get(status, status))}</td><td class=num>{read:,}</td><td class=num>{loaded:,}</td>"
            f"<td class=num>{invalid:,}</td><td class=num>{held:,}</td><td class=num>{unused:,}</td>"
            f"<td>{_e(k.row_unit if k else 'rader')}</td><td>{found}</td>"
            f"<td>nr {ingest_id}, {at:%Y-%m-%d %H:%M}{mark}</td></tr>"
        )

    head = (
        "<table><thead><tr><th>Fil</th><th>Slag</th><th>Läge</th><th>Lästa</th><th>Inlästa</th>"
        "<th>Ogiltiga</th><th>Hållna</th><th>Ej använda</th><th>Enhet</th><th>Regler i karantän (antal) "
        "eller skäl</th><th>Körning</th></tr></thead><tbody>"
    )
    current = [f for f in files if f[4] in (LoadStatus.LOADED, LoadStatus.REJECTED)]
    # The latest state first: rejected files (they need the steward), then the newest loads.
    current.sort(key=lambda f: (f[4] != LoadStatus.REJECTED, -f[1], f[2]))
    earlier = sorted((f for f in files if f not in current), key=lambda f: (-f[1], f[2]))
    n_rejected = sum(1 for f in current if f[4] == LoadStatus.REJECTED)
    verdict = (
        f"<p class=ppss-alert><strong>{n_rejected} fil(er) avvisade</strong>: rätta eller byt ut dem och kör "
        "<code>ppss ingest</code> igen. Till dess vägrar <code>ppss report</code> (utom med --allow-rejected).</p>"
        if n_rejected
        else "<p>Ingen aktuell fil är avvisad.</p>"
    )
    latest_at = when.get(latest)
    page = (
        '<!DOCTYPE html><html lang="sv"><head><meta charset="utf-8"><title>Kontroll av leveranserna</title>'
        '<link rel="stylesheet" href="static/styles/offline.css"></head><body><div class="container">'
        "<h1>Kontroll av leveranserna</h1>"
        f"<p>Senaste körningen: nr {latest}"
        + (f", {latest_at:%Y-%m-%d %H:%M}" if latest_at else "")
        + f". Sidan skrevs {dt.datetime.now().astimezone():%Y-%m-%d %H:%M} från lagret och visar samma filer, "
        "antal och regler som <code>ppss status</code>. Antalen räknar enheten i kolumnen Enhet (lästa = inlästa "
        "+ ogiltiga + hållna + ej använda). Ogiltiga rader bröt mot en regel i filen; hållna väntar på en annan "
        "fil (till exempel personexporten) och prövas igen vid varje inläsning. Platserna (rad, post, element) "
        "finns i lagrets tabell <code>quarantine</code> och i <code>ppss status</code>. Värden visas aldrig: "
        "de kan vara personuppgifter.</p>"
        f"{verdict}<h2>Filerna nu</h2>{head}{''.join(row(f) for f in current)}</tbody></table>"
        + (
            f"<h2>Tidigare versioner och borttagna filer</h2>{head}{''.join(row(f) for f in earlier)}</tbody></table>"
            if earlier
            else ""
        )
        + "<h2>Reglerna</h2><ul>"
        + "".join(
            f'<li><a href="expectations/{p.stem}.html">{_e(BY_NAME[p.stem].label if p.stem in BY_NAME else p.stem)}'
            "</a> (Great Expectations, på engelska)</li>"
            for p in sorted((docs_dir / "expectations").glob("*.html"))
        )
        + "</ul></div></body></html>"
    )
    docs_dir.mkdir(parents=True, exist_ok=True)
    (docs_dir / "index.html").write_text(page, encoding="utf-8")
    return docs_dir / "index.html"


def write_run_index(docs_dir: Path, runs: list[dict]) -> None:
    """An index of this render's runs, for a site rendered without a store (the ingest replaces it
    with `write_index`)."""
    rows = "".join(
        f"<tr><td>{_e(r['suite'])}</td><td>"
        + (f'<a href="{_e(p)}">{_e(r["label"])}</a>' if (p := _page_of(docs_dir, r)) else _e(r["label"]))
        + f"</td><td class=num>{r['rows']:,}</td><td>{'godkänd' if r['success'] else _e(', '.join(r['failed_rules']))}"
        "</td></tr>"
        for r in runs
    )
    (docs_dir / "index.html").write_text(
        '<!DOCTYPE html><html lang="sv"><head><meta charset="utf-8"><title>Kontroll av leveranserna</title>'
        '<link rel="stylesheet" href="static/styles/offline.css"></head><body><div class="container">'
        "<h1>Kontroll av leveranserna</h1><table><thead><tr><th>Slag</th><th>Fil</th><th>Kontrollerade rader</th>"
        f"<th>Resultat</th></tr></thead><tbody>{rows}</tbody></table></div></body></html>",
        encoding="utf-8",
    )
