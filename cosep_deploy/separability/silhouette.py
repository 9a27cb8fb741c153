"""Mean Simplified Silhouette (MSS), the paper's score for a k-medoids clustering.

For a non-medoid point i with own medoid m(i):
    a(i) = d(i, m(i))                               distance to its own medoid
    b(i) = mean of d(i, m) over the k - 1 OTHER medoids
    s(i) = 1 - a(i) / b(i)                          (s(i) = 0 when b(i) = 0)
MSS = mean of s(i) over the points with a(i) > 0: the medoids and every exact duplicate of a medoid (a dead
channel next to another dead one, say) are left out, as in the authors' code. Note b(i) averages over all
other medoids, unlike the classic silhouette's nearest other cluster.

MSS is a mean over channels, so it has a standard error, ``sd(s) / sqrt(m)`` over its ``m`` scored points:
the knee rule uses it as the curve's noise level (how far apart two heights must be to be told apart).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cosep_deploy.errors import SeparabilityError

__all__ = ["mean_simplified_silhouette", "mss_and_standard_error", "mss_standard_error", "simplified_silhouettes"]


def mean_simplified_silhouette(d: Any, medoids: Any, labels: Any) -> float:
    """MSS of the clustering ``labels`` (index into ``medoids``) on the [N, N] distance matrix ``d``.

    The mean of :func:`simplified_silhouettes` (0.0 when no point is scored).
    """
    return mss_and_standard_error(d, medoids, labels)[0]


def mss_and_standard_error(d: Any, medoids: Any, labels: Any) -> tuple[float, float]:
    """MSS and its standard error (:func:`mss_standard_error`) from one pass over the points."""
    s = simplified_silhouettes(d, medoids, labels)
    return (float(s.mean()) if s.size else 0.0), mss_standard_error(s)


def mss_standard_error(s: np.ndarray) -> float:
    """Standard error of the mean of the silhouettes ``s`` (0.0 for fewer than two)."""
    return float(np.std(s, ddof=1) / np.sqrt(s.size)) if s.size >= 2 else 0.0


def simplified_silhouettes(d: Any, medoids: Any, labels: Any) -> np.ndarray:
    """s(i) of every scored point (a(i) > 0) of the clustering ``labels`` on the distance matrix ``d``.

    Ties: a point equidistant to several medoids has the same a(i) and the same sum over the other medoids
    whichever of them it is assigned to, so the score does not depend on how ties were broken (as long as
    each point is labelled with one of its nearest medoids). Degenerate cases never give NaN: k = 1 (no
    other medoid) gives one 0 per non-medoid point and b(i) = 0 gives s(i) = 0; no point with a(i) > 0
    (k = N, or only duplicates) gives an empty array.
    """
    dm = np.asarray(d, dtype=np.float64)
    meds = np.asarray(medoids, dtype=np.int64).ravel()
    lab = np.asarray(labels, dtype=np.int64).ravel()
    n = dm.shape[0] if dm.ndim == 2 else -1
    if dm.ndim != 2 or dm.shape[1] != n:
        raise SeparabilityError(f"d must be a square [N, N] matrix, got shape {list(dm.shape)}")
    k = meds.size
    if k < 1 or lab.size != n:
        raise SeparabilityError(f"need >= 1 medoid and one label per point ({n}), got {k} and {lab.size}")
    if meds.min() < 0 or meds.max() >= n or lab.min() < 0 or lab.max() >= k:
        raise SeparabilityError("medoids must index points and labels must index medoids")
    rest = np.ones(n, dtype=bool)
    rest[meds] = False
    if not rest.any():
        return np.zeros(0)
    if k == 1:
        return np.zeros(int(rest.sum()))
    idx = np.flatnonzero(rest)
    to_meds = dm[np.ix_(idx, meds)]  # [M, k]
    a = to_meds[np.arange(idx.size), lab[idx]]
    scored = a > 0  # the authors leave out every point sitting on its medoid, not only the medoids
    if not scored.any():
        return np.zeros(0)
    idx, to_meds, a = idx[scored], to_meds[scored], a[scored]
    b = (to_meds.sum(axis=1) - a) / (k - 1)
    s = np.zeros(idx.size)
    ok = b > 0
    s[ok] = 1.0 - a[ok] / b[ok]
    return s
