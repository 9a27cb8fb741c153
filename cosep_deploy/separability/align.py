"""Channel alignment that does not overrule the selection: round a kept count to an engine-friendly
multiple only when that stays close to what the selection chose.

Tensor cores like channel counts that are multiples of 8 (FP16) or 32 (INT8). Rounding k = 2 up to 16
would keep 14 channels nobody chose, so the rule is: round to the *nearest* multiple of ``round_to``
(ties upward) that lies in [round_to, N], and only if it adds or removes at most ``max_change * k``
channels (a quarter by default); otherwise keep exactly k and record why alignment was skipped. With
``round_to = 1`` the count is always k. Keeping the whole group (k = N) needs no alignment.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from cosep_deploy.errors import SeparabilityError

__all__ = ["Alignment", "align_count", "align_kept"]


@dataclasses.dataclass(frozen=True)
class Alignment:
    """How a selected count ``k`` became the kept count ``aligned``."""

    round_to: int
    k: int
    aligned: int
    skipped: str | None = None  # why alignment left k alone (None: aligned or nothing to do)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def align_count(k: int, n: int, round_to: int, *, max_change: float = 0.25) -> Alignment:
    """The kept count for a selected ``k`` of ``n`` channels under ``round_to`` alignment."""
    if isinstance(round_to, bool) or not isinstance(round_to, int | np.integer) or round_to < 1:
        raise SeparabilityError(f"round_to must be an int >= 1, got {round_to!r}")
    if not 1 <= k <= n:
        raise SeparabilityError(f"a kept count must be in [1, {n}], got {k}")
    r = int(round_to)
    if r == 1 or k % r == 0 or k == n:
        return Alignment(r, k, k)
    down, up = (k // r) * r, math.ceil(k / r) * r
    options = [m for m in (up, down) if r <= m <= n]  # upward first: ties go up
    if not options:
        return Alignment(r, k, k, f"group of {n} channels is too small for multiples of {r}")
    best = min(options, key=lambda m: abs(m - k))
    limit = math.floor(max_change * k)
    if abs(best - k) > limit:
        return Alignment(r, k, k, f"nearest multiple of {r} ({best}) is more than {max_change:g} k ({limit}) away")
    return Alignment(r, k, best)


def align_kept(kept: Iterable[int], target: int, fill_order: np.ndarray) -> tuple[int, ...]:
    """Grow or shrink a kept set to ``target`` channels: add the first unselected channels of
    ``fill_order`` (best first), or drop the selected channels that come last in it."""
    chosen = [int(i) for i in dict.fromkeys(kept)]
    rank = {int(c): i for i, c in enumerate(fill_order)}
    if len(chosen) > target:
        chosen = sorted(chosen, key=lambda c: rank.get(c, len(rank)))[:target]
    have = set(chosen)
    for idx in fill_order:
        if len(have) >= target:
            break
        have.add(int(idx))
    return tuple(sorted(have))
