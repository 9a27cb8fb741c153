"""Choose every group's kept count so predicted latency meets a budget while retained separability is largest.

The problem: groups ``g`` with allowed counts (multiples of the alignment from a minimum up to the dense
width) and a value curve ``V_g`` (retained separability, :mod:`.order`, weighted by the group's width);
the cost is a sum of layer terms, each a function of the counts of the one or two groups that set its
input and output widths (neighbouring groups interact, so costs are never summed per group).

:func:`allocate_counts` is a greedy: from the dense widths, repeatedly lower by one step the group whose
step loses the least value per millisecond saved (saving computed exactly from the layer terms at the
neighbours' current counts) until the budget is met; then raise, while the budget still holds, the groups
whose steps gain the most value per millisecond spent. :func:`allocate_exhaustive` enumerates every
combination (small problems; the tests check the greedy against it).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping, Sequence

__all__ = ["Allocation", "CostTerm", "GroupCurve", "allocate_counts", "allocate_exhaustive", "total_cost"]

_EPS = 1e-12


@dataclasses.dataclass(frozen=True)
class GroupCurve:
    """A group's allowed counts (ascending) and the value of keeping each."""

    root: str
    counts: tuple[int, ...]
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.counts or len(self.counts) != len(self.values) or list(self.counts) != sorted(set(self.counts)):
            raise ValueError(f"group {self.root!r}: counts must be ascending and distinct, one value each")


@dataclasses.dataclass(frozen=True)
class CostTerm:
    """One layer's predicted time as a function of the counts of the groups in ``groups``."""

    name: str
    groups: tuple[str, ...]
    fn: Callable[[Mapping[str, int]], float]


@dataclasses.dataclass(frozen=True)
class Allocation:
    counts: dict[str, int]
    cost: float
    value: float
    feasible: bool


def total_cost(terms: Sequence[CostTerm], counts: Mapping[str, int]) -> float:
    return sum(t.fn(counts) for t in terms)


def _value(curves: Sequence[GroupCurve], idx: Mapping[str, int]) -> float:
    return sum(c.values[idx[c.root]] for c in curves)


@dataclasses.dataclass
class _Greedy:
    """The greedy's state: every group's index into its allowed counts, and the counts themselves."""

    by_root: dict[str, GroupCurve]
    touching: dict[str, list[CostTerm]]  # per group: the layer terms its count changes
    idx: dict[str, int]
    counts: dict[str, int]

    @classmethod
    def at_dense(cls, curves: Sequence[GroupCurve], terms: Sequence[CostTerm]) -> _Greedy:
        return cls(
            by_root={c.root: c for c in curves},
            touching={c.root: [t for t in terms if c.root in t.groups] for c in curves},
            idx={c.root: len(c.counts) - 1 for c in curves},
            counts={c.root: c.counts[-1] for c in curves},
        )

    def _local(self, root: str, at: Mapping[str, int]) -> float:
        return sum(t.fn(at) for t in self.touching[root])

    def step(self, root: str, to: int) -> tuple[float, float]:
        """(cost change, value change) of moving ``root`` to its allowed count at index ``to``."""
        c = self.by_root[root]
        trial = {**self.counts, root: c.counts[to]}
        return self._local(root, trial) - self._local(root, self.counts), c.values[to] - c.values[self.idx[root]]

    def _cheapest_cut(self, root: str) -> tuple[float, float, int] | None:
        """The nearest lower count that saves time: a measured table is not monotone everywhere (noise,
        alignment plateaus), so a step that saves nothing is looked past rather than ending the search."""
        for to in range(self.idx[root] - 1, -1, -1):
            dc, dv = self.step(root, to)
            if dc < 0:
                return dc, dv, to
        return None

    def best_cut(self) -> tuple[str, int, float] | None:
        """(group, index, cost change) of the cut losing the least value per ms saved; None if none saves."""
        best: tuple[float, str, float, int] | None = None
        for root in self.by_root:
            cut = self._cheapest_cut(root)
            if cut is None:
                continue  # no lower count of this group saves time
            dc, dv, to = cut
            ratio = -dv / -dc  # value lost per ms saved
            if best is None or ratio < best[0] - _EPS:
                best = (ratio, root, dc, to)
        return None if best is None else (best[1], best[3], best[2])

    def best_raise(self, slack: float) -> tuple[str, int, float] | None:
        """(group, index, cost change) of the one-step raise within ``slack`` gaining most value per ms."""
        best: tuple[float, str, float] | None = None
        for root, curve in self.by_root.items():
            if self.idx[root] == len(curve.counts) - 1:
                continue
            dc, dv = self.step(root, self.idx[root] + 1)
            if dc > slack + _EPS:
                continue
            ratio = dv / max(dc, _EPS)
            if best is None or ratio > best[0] + _EPS:
                best = (ratio, root, dc)
        return None if best is None else (best[1], self.idx[best[1]] + 1, best[2])

    def move(self, root: str, to: int, dc: float) -> float:
        self.idx[root] = to
        self.counts[root] = self.by_root[root].counts[to]
        return dc


def allocate_counts(curves: Sequence[GroupCurve], terms: Sequence[CostTerm], budget: float) -> Allocation:
    """Greedy allocation under ``budget`` (same unit as the terms); ``feasible`` False if even every
    group at its minimum exceeds it (the counts are then all minimal)."""
    state = _Greedy.at_dense(curves, terms)
    cost = total_cost(terms, state.counts)
    while cost > budget and (cut := state.best_cut()) is not None:
        cost += state.move(*cut)
    if cost <= budget + _EPS:  # spend the slack on the steps that gain most value per ms
        while (up := state.best_raise(budget - cost)) is not None:
            cost += state.move(*up)
    cost = total_cost(terms, state.counts)  # exact, free of accumulated rounding
    return Allocation(dict(state.counts), cost, _value(curves, state.idx), cost <= budget + 1e-9)


def allocate_exhaustive(
    curves: Sequence[GroupCurve], terms: Sequence[CostTerm], budget: float, *, limit: int = 200_000
) -> Allocation:
    """The best allocation by enumeration (at most ``limit`` combinations)."""
    size = 1
    for c in curves:
        size *= len(c.counts)
    if size > limit:
        raise ValueError(f"{size} combinations exceed the exhaustive search limit {limit}")
    best: Allocation | None = None
    for choice in itertools.product(*(range(len(c.counts)) for c in curves)):
        idx = {c.root: i for c, i in zip(curves, choice, strict=True)}
        counts = {c.root: c.counts[i] for c, i in zip(curves, choice, strict=True)}
        cost = total_cost(terms, counts)
        if cost > budget + 1e-9:
            continue
        value = _value(curves, idx)
        if best is None or value > best.value + 1e-12:
            best = Allocation(counts, cost, value, True)
    if best is None:
        counts = {c.root: c.counts[0] for c in curves}
        return Allocation(counts, total_cost(terms, counts), _value(curves, dict.fromkeys(counts, 0)), False)
    return best
