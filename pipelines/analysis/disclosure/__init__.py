"""Disclosure control for everything a store publishes: one layer, proven by an audit.

Every published count is registered together with the pupils it counts (`<col>__members`,
a list of pupil keys beside the count column). The pupils are the cell's identity: two
cells over the same pupils are one cell, whatever the table, chart or sentence, and no
relation between cells is ever declared by hand. The published sets of the report and of
every earlier publication of the store (`pipelines.analysis.ledger`) partition the pupils
into *atoms* (pupils in exactly the same published sets); each cell is the sum of its atoms.
That linear system is everything a reader can infer from nesting, overlap, margins,
differences and sibling reports, and more (it knows the true structure).

`Publication.protect()` then
1. hides every count below min_cell, zeros included (primary suppression, the domain
   rules' Skolverket `..`), and every cell an earlier publication of the store hid;
2. audits as an attacker would: for every hidden cell an integer program (scipy's HiGHS
   `milp`) finds the smallest and largest value consistent with everything ever published;
   for every *derived* count (the difference of two nested published sets, or what a
   published set holds beyond the published sets inside it) with 1 to min_cell - 1 pupils,
   the same. A hidden cell must keep a range at least min_cell wide; a derived count must
   keep one at least min_cell wide or one that reaches 0 (a reader cannot tell that anyone
   is there). See docs/domain-rules.md, "Röjandekontroll";
3. hides further cells (secondary suppression) where the audit fails: a MILP picks the
   cheapest set of published cells such that every failure so far has one more hidden cell
   among those that pin it (LP duals), and the audit runs again; if nothing more can be
   hidden, `DisclosureError` refuses to publish.

Figures (shares, means, intervals, effects) rest on count cells and are hidden with them.
Each figure is also recorded with the sets it rests on: two publications of one store that
give one population and measure two different values are refused (`DisclosureError`).
Zero counts are hidden like other small counts, so a hidden count may be 0: were zeros shown,
every hidden count would be known to be at least 1, and a later, finer report's hidden counts
would narrow an earlier report's (attack round 2, F3). A hidden zero needs no range of its own.
"""

from pipelines.analysis.disclosure.cells import (
    ALL,
    EMPTY,
    HIDDEN_SUFFIX,
    MEMBERS_SUFFIX,
    Cell,
    DisclosureError,
    Key,
    KeyFn,
    Table,
    describe_key,
    family_of,
    key,
    keyed,
    members,
    set_id,
)
from pipelines.analysis.disclosure.publication import Protected, Publication

__all__ = [
    "ALL",
    "EMPTY",
    "HIDDEN_SUFFIX",
    "MEMBERS_SUFFIX",
    "Cell",
    "DisclosureError",
    "Key",
    "KeyFn",
    "Protected",
    "Publication",
    "Table",
    "describe_key",
    "family_of",
    "key",
    "keyed",
    "members",
    "set_id",
]
