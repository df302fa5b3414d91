"""Planner: drive by the rarest tag's postings, or scan items along the order index.

docs/query-language.md#execution
"""

from __future__ import annotations

from dataclasses import dataclass

from apps.search.query.config import int_knob
from apps.search.query.ir import FALSE, TRUE, AllOf, Cond, Extern, Match


@dataclass(frozen=True)
class Plan:
    """`postings` reads EffectiveTag rows of `driver` first; `scan` walks media items.

    A scan plan may still name a driver: it falls back to postings if the scan runs long.
    """

    kind: str
    cond: Cond
    driver: Match | Extern | None = None
    rest: Cond | None = None
    c_min: int | None = None

    def as_postings(self) -> Plan:
        """The postings alternative of a scan plan that has a driver."""
        return Plan("postings", self.cond, self.driver, self.rest, self.c_min)


def _can_drive(node: Cond) -> bool:
    """One effective tag's postings, or the rows of a registered qualifier (a dataset's explicit
    members): both are index ranges that hold item ids."""
    if isinstance(node, Extern):
        return True
    return isinstance(node, Match) and node.table == "effective" and len(node.tag_ids) == 1


def _driver_key(node: Match | Extern) -> tuple[int, int]:
    return (node.count, min(node.tag_ids) if isinstance(node, Match) else 0)


def plan_choose(cond: Cond, *, limit: int, total: int) -> Plan:
    """Pick the plan for a normalised condition (`total` ≈ number of live items)."""
    if cond == FALSE:
        return Plan("empty", cond)
    if cond == TRUE:
        return Plan("scan", cond)
    children = list(cond.children) if isinstance(cond, AllOf) else [cond]
    drivers = [c for c in children if _can_drive(c)]
    if not drivers:
        return Plan("scan", cond)
    matches = [d for d in drivers if isinstance(d, Match | Extern)]
    driver = min(matches, key=_driver_key)
    others = [c for c in children if c is not driver]
    rest: Cond | None = None if not others else others[0] if len(others) == 1 else AllOf(tuple(others))
    c_min = driver.count
    if c_min <= int_knob("SEARCH_SMALL_THRESHOLD"):
        return Plan("postings", cond, driver, rest, c_min)
    selectivity = 1.0
    for child in children:
        if isinstance(child, Match | Extern):
            selectivity *= min(1.0, child.count / max(total, 1))
    if selectivity > 0 and limit / selectivity <= int_knob("SEARCH_SCAN_BUDGET"):
        return Plan("scan", cond, driver, rest, c_min)
    return Plan("postings", cond, driver, rest, c_min)
