"""Cells: a published count with the pupils it counts, tables of them, and the keys that name
them (pipelines.analysis.disclosure)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

ALL = "*"  # a margin: every category of the dimension
Key = tuple  # a cell's label: (population, (dim, value), ...), for messages and lookups
KeyFn = Callable[[dict], Key | None]
HIDDEN_SUFFIX = "__hidden"
MEMBERS_SUFFIX = "__members"
EMPTY = "empty"  # the identity of every count of no pupils
BOUND = "bound:"  # the identity of a bound: "bound:<its pupils' set_id>:<its value>"
# Figures equal to this relative precision are one number (estimates pass through floats).
SAME_VALUE_RTOL = 1e-9


class DisclosureError(RuntimeError):
    """The report cannot be published without revealing a hidden cell."""


def members(column: str) -> str:
    """The column beside a count column that lists the pupils it counts."""
    return column + MEMBERS_SUFFIX


def key(population: str, **dims: Any) -> Key:
    """A cell's label: the population it counts and its value of each dimension."""
    return (population, *sorted((k, _plain(v)) for k, v in dims.items()))


def keyed(population: str, *columns: str, **fixed: Any) -> KeyFn:
    """Label function for table rows: dimensions from the row's `columns`, plus constants.
    A column may be renamed as `"dim=column"`."""
    pairs = [c.split("=", 1) if "=" in c else (c, c) for c in columns]

    def fn(row: dict) -> Key:
        return key(population, **fixed, **{dim: row[col] for dim, col in pairs})

    fn.columns = [col for _, col in pairs]  # type: ignore[attr-defined]
    return fn


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return v


def describe_key(k: Any) -> str:
    """`population(dim=value, ...)`."""
    if isinstance(k, tuple) and k and all(isinstance(x, tuple) and len(x) == 2 for x in k[1:]):
        return f"{k[0]}(" + ", ".join(f"{d}={v}" for d, v in k[1:]) + ")"
    return str(k)


@dataclass
class Cell:
    id: str  # the identity of its pupils (set_id); atoms and derived counts: "atom:…", "diff:…"
    label: str
    value: int
    tokens: np.ndarray | None = None  # sorted pupil tokens (published and prior cells)
    internal: bool = False  # derived: never published itself, but follows from published cells
    weight: float = 1.0  # how much hiding this cell costs, relative to its value (see prefer_shown)
    prior: str | None = None  # "published" or "hidden" in an earlier publication of the store
    current: bool = False  # published (shown or hidden) by this publication
    families: set[str] = field(default_factory=set)  # the populations its labels name (margins and parts)
    # The width its range must keep: this publication's min_cell for its own new counts; for a
    # count earlier publications hid, the highest min_cell among them (their promise: a later
    # report cannot widen what they pinned); for a derived count, the highest of the cells it
    # is derived with (set by _System.build).
    need: int = 0
    # A published number of rows, not of pupils: at least the number of `tokens` (each of those
    # pupils has a row), so it bounds every count inside them from above (attack round 5, F2:
    # the register's loaded rows). It needs no range of its own; hiding it is cheap.
    bound: bool = False


@dataclass
class Table:
    name: str
    frame: pl.DataFrame
    counts: list[str]
    rests_on: dict[str, list[str]]
    keys: list[str]  # cells every figure of the table rests on (e.g. its sample)
    caption: str
    row_ids: list[dict[str, str | None]] = field(default_factory=list)
    measures: dict[str, Callable[[dict], str]] = field(default_factory=dict)


def set_id(tokens: np.ndarray) -> str:
    if len(tokens) == 0:
        return EMPTY
    return hashlib.blake2b(np.ascontiguousarray(tokens, dtype=np.uint64).tobytes(), digest_size=12).hexdigest()


def _families(label: Key) -> set[str]:
    """The populations a label names: its population, and its population split by the
    dimensions it fixes (gender rows and district rows of one population are two splits,
    each a margin of its own)."""
    if not (isinstance(label, tuple) and label):
        return {str(label)}
    fixed = [str(d) for d, v in label[1:] if v != ALL]
    return {str(label[0])} | ({f"{label[0]} efter {', '.join(fixed)}"} if fixed else set())


def family_of(label: str) -> str:
    """The population a described label names: `enrolled(district=…)` -> `enrolled`."""
    return label.split("(", 1)[0]


def _nan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)
