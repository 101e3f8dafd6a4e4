"""Every publication made from a store, kept beside the store: the disclosure audit's memory.

A reader may hold every report ever written from a store (any year, folder, threshold or
district subset, and what a researcher protected in the explore notebook), so each new
publication is audited together with all of them, wherever they were written and whether or
not their folders still exist. The ledger lives in `<store>.ledger/`, next to the DuckDB
file, and survives rebuilds of the store (a rebuild swaps the file, not the folder):

- `salt`: a random secret made on first use. Pupils are recorded as tokens, a keyed hash
  (BLAKE2b) of the store's pupil key, so the ledger holds no pupil key in clear.
- `<publication>/meta.json`: what was published (year, districts, threshold, when, where).
- `<publication>/cells.parquet`: each published count: its set identity, label, value
  (null where it was hidden) and whether it was hidden.
- `<publication>/members.parquet`: the tokens of each cell's pupils (never published).
- `<publication>/measures.parquet`: each published figure (share, mean, estimate) with the
  set identities it rests on, so that one population never gets two numbers.

A publication's folder name is a hash of its content: writing the same report again adds
nothing. `make clean` removes the ledger with the store.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

import polars as pl

LEDGER_SUFFIX = ".ledger"
CELLS_SCHEMA = {"cell_id": pl.String, "label": pl.String, "value": pl.Int64, "hidden": pl.Boolean}
MEMBERS_SCHEMA = {"cell_id": pl.String, "token": pl.UInt64}
MEASURES_SCHEMA = {"measure": pl.String, "sets": pl.String, "value": pl.Float64, "hidden": pl.Boolean}


@dataclass
class Prior:
    """Everything earlier publications made public, as the audit needs it."""

    cells: pl.DataFrame  # cell_id, label, value (null: hidden), hidden, publication, min_cell
    members: pl.DataFrame  # cell_id, token (one row per pupil of each cell)
    measures: pl.DataFrame  # measure, sets, value, hidden, publication
    publications: list[dict]


class Ledger:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    @classmethod
    def for_store(cls, store: str | Path) -> Ledger:
        store = Path(store)
        return cls(store.with_name(store.name + LEDGER_SUFFIX))

    @property
    def salt(self) -> bytes:
        """The ledger's secret; made once. Without it no token can be tied back to a pupil key."""
        path = self.folder / "salt"
        if not path.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(secrets.token_hex(32), encoding="ascii")
            try:
                os.link(tmp, path)  # first writer wins; a concurrent one reads the winner's salt
            except FileExistsError:
                pass
            finally:
                tmp.unlink(missing_ok=True)
        return bytes.fromhex(path.read_text(encoding="ascii").strip())

    def publication_dirs(self) -> list[Path]:
        if not self.folder.exists():
            return []
        return sorted(p for p in self.folder.iterdir() if p.is_dir() and (p / "meta.json").exists())

    def prior(self) -> Prior:
        cells, members, measures, metas = [], [], [], []
        for d in self.publication_dirs():
            meta = json.loads((d / "meta.json").read_text(encoding="utf-8"))
            metas.append(meta)
            cells.append(
                pl.read_parquet(d / "cells.parquet").with_columns(
                    pl.lit(d.name).alias("publication"),
                    pl.lit(int(meta["min_cell"]), dtype=pl.Int64).alias("min_cell"),  # the promise it kept
                )
            )
            members.append(pl.read_parquet(d / "members.parquet"))
            measures.append(pl.read_parquet(d / "measures.parquet").with_columns(pl.lit(d.name).alias("publication")))
        empty_cells = pl.DataFrame(schema={**CELLS_SCHEMA, "publication": pl.String, "min_cell": pl.Int64})
        empty_measures = pl.DataFrame(schema={**MEASURES_SCHEMA, "publication": pl.String})
        return Prior(
            cells=pl.concat(cells) if cells else empty_cells,
            members=pl.concat(members).unique() if members else pl.DataFrame(schema=MEMBERS_SCHEMA),
            measures=pl.concat(measures) if measures else empty_measures,
            publications=sorted(metas, key=lambda m: m.get("written", "")),
        )

    def record(self, meta: dict, cells: pl.DataFrame, members: pl.DataFrame, measures: pl.DataFrame) -> Path:
        """Add a publication (written atomically: a folder appears whole or not at all)."""
        cells = cells.select(list(CELLS_SCHEMA)).cast(CELLS_SCHEMA).sort("cell_id")  # type: ignore[arg-type]
        members = members.select(list(MEMBERS_SCHEMA)).cast(MEMBERS_SCHEMA).unique().sort("cell_id", "token")  # type: ignore[arg-type]
        measures = measures.select(list(MEASURES_SCHEMA)).cast(MEASURES_SCHEMA).sort("measure", "sets")  # type: ignore[arg-type]
        digest = hashlib.blake2b(digest_size=10)
        for frame in (cells, measures):
            digest.update(frame.write_csv().encode("utf-8"))
        digest.update(json.dumps({k: meta.get(k) for k in ("min_cell",)}, sort_keys=True).encode())
        target = self.folder / digest.hexdigest()
        if target.exists():
            return target  # the same publication again: nothing new is public
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{target.name}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        stamped = {**meta, "written": dt.datetime.now().astimezone().isoformat(timespec="seconds")}
        (tmp / "meta.json").write_text(json.dumps(stamped, ensure_ascii=False, indent=1), encoding="utf-8")
        cells.write_parquet(tmp / "cells.parquet")
        members.write_parquet(tmp / "members.parquet")
        measures.write_parquet(tmp / "measures.parquet")
        try:
            tmp.rename(target)
        except OSError:  # written meanwhile by another run of the same report
            shutil.rmtree(tmp, ignore_errors=True)
        return target

    def publications(self) -> list[dict]:
        """Each publication's meta with its id and how many counts it showed and hid."""
        out = []
        for d in self.publication_dirs():
            meta = json.loads((d / "meta.json").read_text(encoding="utf-8"))
            hidden = pl.read_parquet(d / "cells.parquet", columns=["hidden"])["hidden"]
            out.append({**meta, "id": d.name, "shown": int((~hidden).sum()), "hidden": int(hidden.sum())})
        return sorted(out, key=lambda m: m.get("written", ""))
