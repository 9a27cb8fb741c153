"""One group's pruning decision: what was scored, how many channels the rule chose, which are kept, and why.

Every selection method returns a :class:`GroupDecision`; the plan records its ``to_json()`` per group.
The JSON keeps the keys earlier plans and the reports read (``root``, ``size``, ``k``, ``n_kept``,
``kept``, ``curve``, ``fallback``, ``grid``, ``count_rule``, ``note``), so old plans still load and show.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from cosep_deploy.separability.align import Alignment
from cosep_deploy.separability.knee import KneeDecision

__all__ = ["CountChoice", "GroupDecision"]


@dataclasses.dataclass(frozen=True)
class CountChoice:
    """How many channels a group keeps before alignment, by which rule, and the rule's own record."""

    count: int
    rule: str  # "mss_knee", "ratio(0.5)", "emp(beta=1.0)", "given_counts", "macs_budget(x0.73)", ...
    knee: KneeDecision | None = None
    curve: tuple[tuple[int, float], ...] = ()
    grid: str = "none"
    note: str | None = None


@dataclasses.dataclass(frozen=True)
class GroupDecision:
    """The decision for one coupled group, in its root channel space."""

    root: str
    size: int
    method: str
    choice: CountChoice  # the count the kept set was built for (the method's own, a budget's or given)
    picked: tuple[int, ...]  # the method's channels at that count
    kept: tuple[int, ...]  # after alignment
    alignment: Alignment
    scores: np.ndarray  # per-channel L1 filter norms of the group's producers (the fill order)
    members: tuple[dict[str, Any], ...] = ()
    consumers: tuple[str, ...] = ()
    keep: str = "max_l1"  # which channel of a cluster is kept, or how the baseline picks
    medoids: tuple[int, ...] = ()
    own: CountChoice | None = None  # the method's own count when an allocator overrode it
    budget_factor: float | None = None

    @property
    def k(self) -> int:
        return self.choice.count

    @property
    def n_kept(self) -> int:
        return len(self.kept)

    @property
    def fallback(self) -> bool:
        knee = self.choice.knee or (self.own.knee if self.own is not None else None)
        return bool(knee is not None and knee.fallback)

    def why(self) -> str:
        parts = [f"{self.method}: {self.choice.rule} -> k = {self.k} of {self.size}"]
        knee = self.choice.knee or (self.own.knee if self.own is not None else None)
        if knee is not None:
            parts.append(f"knee ({knee.rule}): {knee.why}")
        if self.own is not None:
            parts.append(f"own count {self.own.count} ({self.own.rule}) overridden")
        a = self.alignment
        if a.skipped:
            parts.append(f"alignment to {a.round_to} skipped: {a.skipped}")
        elif a.aligned != a.k:
            parts.append(f"aligned {a.k} -> {a.aligned} (multiple of {a.round_to})")
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        knee = self.choice.knee or (self.own.knee if self.own is not None else None)
        curve = self.choice.curve or (self.own.curve if self.own is not None else ())
        grid = self.choice.grid if self.choice.curve else (self.own.grid if self.own is not None else "none")
        note = self.choice.note or (knee.why if knee is not None and knee.fallback else None)
        return {
            "root": self.root,
            "size": self.size,
            "method": self.method,
            "members": [dict(m) for m in self.members],
            "consumers": list(self.consumers),
            "count_rule": self.choice.rule,
            "k": self.k,
            "kept": list(self.kept),
            "n_kept": self.n_kept,
            "n_channels": self.size,
            "picked": list(self.picked),
            "fallback": self.fallback,
            "grid": grid,
            "curve": [[k, s] for k, s in curve],
            "knee": knee.to_json() if knee is not None else None,
            "round_to": self.alignment.round_to,
            "alignment": self.alignment.to_json(),
            "keep": self.keep,
            "medoids": list(self.medoids),
            "own_count": None if self.own is None else {"count": self.own.count, "rule": self.own.rule},
            "budget_factor": self.budget_factor,
            "scores": [float(f"{v:.6g}") for v in np.asarray(self.scores, dtype=np.float64)],
            "why": self.why(),
            "note": note,
        }
