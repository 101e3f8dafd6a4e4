"""`ppss status`: what the store holds, what was quarantined and why, and what to do next.

Shows locations, columns, rules and messages only: never a value from a row.
"""

from __future__ import annotations

from pathlib import Path

from pipelines.codes import CURRENT, LoadStatus, Quarantine
from pipelines.ingest.kinds import BY_NAME
from pipelines.store import connect_readonly

# What to do about each kind of finding, in the order a user should act.
NEXT_STEPS = {
    LoadStatus.REJECTED: "correct or replace the rejected file(s) above (or take them out of the delivery folder) "
    "and run `ppss ingest` again; until then `ppss report` refuses the store unless given --allow-rejected",
    Quarantine.HELD: "rows held by checks across files load by themselves once what they point to is loaded "
    "(e.g. the persons export that holds the pupil); ingest it and they are checked again",
    Quarantine.INVALID: "quarantined rows stay out until a corrected export replaces the file: send the locations "
    "above to whoever delivered it",
    "build": "the marts are older than the latest load: run `ppss build`",
}


def status_lines(store: Path, examples: int = 3) -> list[str]:
    con = connect_readonly(store)
    try:
        meta = dict(con.execute("select key, value from meta").fetchall())
        files = con.execute(f"""
            select status, kind, path, rows_read, rows_loaded, rows_invalid, rows_held, rows_unused, message
            from load_log where status in {CURRENT} order by kind, path
        """).fetchall()
        superseded, removed = con.execute(
            "select count(*) filter (status = 'superseded'), count(*) filter (status = 'removed') from load_log"
        ).fetchall()[0]
        rules = con.execute(f"""
            select q.rule, q.is_cross_file, count(*) as n, count(distinct q.file_id) as n_files,
                   any_value(q.message) as message
            from quarantine as q inner join load_log as l using (file_id)
            where l.status in {CURRENT}
            group by all order by n desc, rule
        """).fetchall()
        samples = {
            rule: con.execute(
                f"""
                select q.path, q.location, q.column_name from quarantine as q inner join load_log as l using (file_id)
                where q.rule = ? and l.status in {CURRENT} order by q.file_id, q.location limit ?
            """,
                [rule, examples],
            ).fetchall()
            for rule, *_ in rules
        }
        latest_load = con.execute("select max(loaded_at) from load_log").fetchall()[0][0]
        # School units the platform knows but skolenheter.csv does not place in a stadsdel: their
        # pupils load, but fall outside every district figure.
        no_district = con.execute("""
            select count(distinct school_unit_code) from src_organisations
            where school_unit_code not in (select school_unit_code from src_school_units)
        """).fetchall()[0][0]
    finally:
        con.close()
    out = [f"store {store}" + ("  (demo data, built-in demo key)" if meta.get("demo_key") == "true" else "")]
    out.append(
        f"{len(files)} current files ({superseded} earlier versions superseded, {removed} removed from the "
        "delivery folder); "
        f"marts built {meta.get('built_at', 'never')}"
    )
    out.append("")
    out.append(f"{'status':<9} {'kind':<13} {'read':>9} {'loaded':>9} {'invalid':>8} {'held':>7} {'unused':>7}  file")
    for status, kind, path, read, loaded, invalid, held, unused, message in files:
        out.append(f"{status:<9} {kind:<13} {read:>9,} {loaded:>9,} {invalid:>8,} {held:>7,} {unused:>7,}  {path}")
        if status == LoadStatus.REJECTED:
            out.append(f"{'':<9} {message}")
    kinds = sorted({f[1] for f in files})
    if kinds:  # the unit each kind counts, as the Data Docs index names it
        out.append("counted in: " + "; ".join(f"{k}: {BY_NAME[k].row_unit_en}" for k in kinds if k in BY_NAME))
    if rules:
        out += ["", "quarantined rows by rule (location, column; no values are shown):"]
        for rule, cross, n, n_files, message in rules:
            out.append(f"  {rule}: {n:,} rows in {n_files} file(s){' (check across files)' if cross else ''}")
            out.append(f"    {message}")
            for path, location, column in samples[rule]:
                out.append(f"    - {path} {location}" + (f" [{column}]" if column else ""))
    steps = []
    if any(f[0] == LoadStatus.REJECTED for f in files):
        steps.append(NEXT_STEPS[LoadStatus.REJECTED])
    if any(f[6] for f in files):
        steps.append(NEXT_STEPS[Quarantine.HELD])
    if any(f[5] for f in files):
        steps.append(NEXT_STEPS[Quarantine.INVALID])
    if no_district:
        steps.append(
            f"{no_district} school unit(s) in the Organisations export are missing from skolenheter.csv, "
            "so their pupils count in no stadsdel: add them to skolenheter.csv"
        )
    if "built_at" not in meta or (latest_load and str(latest_load) > meta["built_at"]):
        steps.append(NEXT_STEPS["build"])
    out += ["", "next:"] + [f"  - {s}" for s in steps or ["nothing to do: every file loaded and the marts are current"]]
    return out
