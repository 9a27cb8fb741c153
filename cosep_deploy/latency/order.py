"""CoSeP's channel order inside a group, and how much separability the first ``c`` channels keep.

Order: the representatives CoSeP keeps at the MSS knee come first, then every other channel; inside each
part, farthest-first over the separability-profile distances (the next channel is the one worst
represented by those already kept; ties go to the larger L1 filter norm). The first channel is the
highest-L1 representative. Keeping the first ``c`` channels of this order for any ``c`` gives nested
keep-sets, which is what lets the allocator trade counts between groups.

Retained separability of a keep-set ``S`` (a facility-location coverage): every channel ``i`` is
represented by its nearest kept channel, ``m_i = min_{j in S} d_ij`` (``d_max`` when nothing is kept);
``V(S) = 1 - mean_i(m_i) / d_max``. ``V`` is 0 for the empty set, 1 when every channel is kept, and grows
with each channel by how much of the group's profile space it newly covers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["cosep_order", "coverage_curve"]


def cosep_order(d: np.ndarray, representatives: Sequence[int], norms: np.ndarray) -> list[int]:
    """All channels of a group, representatives first, each part in farthest-first order."""
    n = d.shape[0]
    reps = [int(i) for i in dict.fromkeys(representatives) if 0 <= int(i) < n]
    rest = [i for i in range(n) if i not in set(reps)]
    order: list[int] = []
    nearest = np.full(n, np.inf)
    for part in (reps, rest):
        left = list(part)
        while left:
            if not order:
                pick = max(left, key=lambda i: (float(norms[i]), -i))
            else:
                pick = max(left, key=lambda i: (float(nearest[i]), float(norms[i]), -i))
            order.append(pick)
            left.remove(pick)
            nearest = np.minimum(nearest, d[pick])
    return order


def coverage_curve(d: np.ndarray, order: Sequence[int]) -> np.ndarray:
    """``V[c]`` for ``c = 0..N``: retained separability when the first ``c`` channels of ``order`` are kept."""
    n = d.shape[0]
    d_max = float(d.max()) if d.size else 0.0
    values = np.zeros(n + 1)
    if d_max <= 0:  # identical profiles: no channel adds coverage; fall back to the kept fraction
        values[:] = np.arange(n + 1) / max(n, 1)
        return values
    nearest = np.full(n, d_max)
    for c, j in enumerate(order, start=1):
        nearest = np.minimum(nearest, d[j])
        values[c] = 1.0 - float(nearest.mean()) / d_max
    return values
