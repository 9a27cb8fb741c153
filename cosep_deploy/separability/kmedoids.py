"""k-medoids on a precomputed distance matrix: greedy BUILD initialisation, then FasterPAM-style swaps.

Our own implementation of the published algorithm (Schubert & Rousseeuw, "Fast and eager k-medoids
clustering", 2021); the ``kmedoids`` package is GPL-3.0 and is neither used nor copied.

Every point o caches its nearest medoid n(o) at distance dn(o) and its second nearest at ds(o). The
loss change of swapping medoid slot i for a non-medoid candidate c is then, in O(N) per candidate,

    delta(i, c) = removal_loss[i] + sum_o min(d(o, c) - dn(o), 0)                 (shared by all i)
                  + sum_{o : n(o) = i} (min(max(d(o, c), dn(o)), ds(o)) - ds(o))   (per slot i)

with ``removal_loss[i] = sum_{n(o) = i} (ds(o) - dn(o))``. FasterPAM tries candidates one at a time and
swaps as soon as the best slot improves the loss ("eager"). We evaluate candidates in blocks (one numpy
pass over a [N, block] slice, the per-slot sums as a sparse one-hot product) and take the best improving
swap of each block: the same O(N^2) per pass, eager at block granularity, and fast in numpy. The scan
order is a seeded permutation per pass, so results are deterministic for a seed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from scipy import sparse

from cosep_deploy.errors import SeparabilityError

__all__ = [
    "KMedoidsResult",
    "build_medoids",
    "check_distance_matrix",
    "grow_medoids",
    "kmedoids",
    "plusplus_medoids",
]

_BLOCK_ELEMENTS = 1 << 19  # a [N, block] candidate slice of ~4 MB
_MULTI_START_MAX_N = 100  # default restarts up to this N (see kmedoids' n_init)


@dataclasses.dataclass(frozen=True)
class KMedoidsResult:
    """Medoids (sorted point indices), each point's cluster (index into ``medoids``), total distance."""

    medoids: np.ndarray
    labels: np.ndarray
    loss: float
    swaps: int = 0
    passes: int = 0


def check_distance_matrix(d: Any, what: str = "D") -> np.ndarray:
    """A square, finite, non-negative float64 matrix (symmetry is the caller's contract; not rechecked)."""
    a = np.asarray(d, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise SeparabilityError(f"{what} must be a square [N, N] distance matrix, got shape {list(a.shape)}")
    if not np.all(np.isfinite(a)):
        raise SeparabilityError(f"{what} contains NaN or inf")
    if np.any(a < 0):
        raise SeparabilityError(f"{what} has negative entries: distances must be >= 0")
    return a


def build_medoids(d: np.ndarray, k: int, start: np.ndarray | None = None) -> np.ndarray:
    """Greedy BUILD: add, one at a time, the point that lowers the total distance most.

    Starts from ``start`` (warm start) or from the point with the smallest distance sum. Cost O(N^2) per
    added medoid. Ties go to the lowest index; points that cannot lower the loss (duplicates) are still
    added, lowest index first, so the result always has ``k`` distinct points.
    """
    n = d.shape[0]
    meds = [int(m) for m in start] if start is not None and len(start) else [int(np.argmin(d.sum(axis=0)))]
    is_med = np.zeros(n, dtype=bool)
    is_med[meds] = True
    dn = d[:, meds].min(axis=1)
    step = max(1, _BLOCK_ELEMENTS // n)
    while len(meds) < k:
        gain = np.empty(n)
        for s in range(0, n, step):  # column blocks bound the [N, block] temporary
            gain[s : s + step] = np.maximum(dn[:, None] - d[:, s : s + step], 0.0).sum(axis=0)
        gain[is_med] = -1.0
        c = int(np.argmax(gain))
        meds.append(c)
        is_med[c] = True
        np.minimum(dn, d[:, c], out=dn)
    return np.asarray(meds, dtype=np.int64)


def grow_medoids(d: np.ndarray, medoids: np.ndarray, k: int) -> np.ndarray:
    """Warm start for a larger k: add farthest points (each the one farthest from all medoids so far).

    O(N) per added point, so a jump of hundreds of k on a coarse grid stays cheap; the swap phase then
    repairs the choice. Ties go to the lowest index.
    """
    meds = [int(m) for m in medoids]
    dn = d[:, meds].min(axis=1) if meds else np.full(d.shape[0], np.inf)
    is_med = np.zeros(d.shape[0], dtype=bool)
    is_med[meds] = True
    while len(meds) < k:
        far = np.where(is_med, -1.0, dn)
        c = int(np.argmax(far))
        meds.append(c)
        is_med[c] = True
        np.minimum(dn, d[:, c], out=dn)
    return np.asarray(meds, dtype=np.int64)


def plusplus_medoids(d: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-medoids++ seeding (the k-means++ rule on distances): a random first point, then each next point
    drawn with probability proportional to its distance to the nearest medoid so far. Used for restarts.
    """
    n = d.shape[0]
    meds = [int(rng.integers(n))]
    is_med = np.zeros(n, dtype=bool)
    is_med[meds] = True
    dn = d[:, meds[0]].copy()
    while len(meds) < k:
        p = np.where(is_med, 0.0, dn)
        total = p.sum()
        # when every free point duplicates a medoid (p all 0), take the lowest free index
        c = int(rng.choice(n, p=p / total)) if total > 0 else int(np.flatnonzero(~is_med)[0])
        meds.append(c)
        is_med[c] = True
        np.minimum(dn, d[:, c], out=dn)
    return np.asarray(meds, dtype=np.int64)


def _nearest_two(dm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Nearest and second-nearest slot (first index on ties) and their distances, for rows of [M, k]."""
    rows = np.arange(dm.shape[0])
    near = np.argmin(dm, axis=1)
    dn = dm[rows, near]
    masked = dm.copy()
    masked[rows, near] = np.inf
    sec = np.argmin(masked, axis=1)
    return near, dn, sec, masked[rows, sec]


class _Swapper:
    """Medoid slots with nearest/second-nearest caches and the blocked eager swap search."""

    def __init__(self, d: np.ndarray, medoids: np.ndarray) -> None:
        self.d = d
        self.n = d.shape[0]
        self.med = np.array(medoids, dtype=np.int64)
        self.k = self.med.size
        self.is_med = np.zeros(self.n, dtype=bool)
        self.is_med[self.med] = True
        self.near, self.dn, self.sec, self.ds = _nearest_two(d[:, self.med])
        # A swap must beat rounding noise: a delta sums N terms each rounded at ~eps * max(D).
        self.tol = 8.0 * np.finfo(np.float64).eps * self.n * max(float(d.max()), 1e-300)

    def _onehot(self) -> sparse.csr_matrix:
        return sparse.csr_matrix((np.ones(self.n), (self.near, np.arange(self.n))), shape=(self.k, self.n))

    def best_in_block(self, cand: np.ndarray, onehot: sparse.csr_matrix) -> tuple[float, int, int]:
        """Best (delta, slot, candidate) over a block of non-medoid candidates."""
        dc = self.d[cand].T  # D is symmetric: gathering rows is cheaper than gathering columns
        dn, ds = self.dn[:, None], self.ds[:, None]
        shared = np.minimum(dc - dn, 0.0).sum(axis=0)  # [b]
        per = np.minimum(np.maximum(dc, dn), ds)
        per -= ds
        removal = np.bincount(self.near, weights=self.ds - self.dn, minlength=self.k)
        delta = onehot @ per + removal[:, None]  # [k, b]
        slot = np.argmin(delta, axis=0)
        total = delta[slot, np.arange(cand.size)] + shared
        j = int(np.argmin(total))
        return float(total[j]), int(slot[j]), int(cand[j])

    def swap(self, slot: int, x: int) -> None:
        """Replace the medoid in ``slot`` by point ``x`` and update the caches."""
        self.is_med[self.med[slot]] = False
        self.med[slot] = x
        self.is_med[x] = True
        dx = self.d[x]
        hit = (self.near == slot) | (self.sec == slot)
        keep = ~hit
        closer = keep & (dx < self.dn)
        mid = keep & ~closer & (dx < self.ds)
        self.sec[closer], self.ds[closer] = self.near[closer], self.dn[closer]
        self.near[closer], self.dn[closer] = slot, dx[closer]
        self.sec[mid], self.ds[mid] = slot, dx[mid]
        idx = np.flatnonzero(hit)  # lost their nearest or second nearest: rescan all slots
        if idx.size:
            near, dn, sec, ds = _nearest_two(self.d[np.ix_(idx, self.med)])
            self.near[idx], self.dn[idx], self.sec[idx], self.ds[idx] = near, dn, sec, ds

    def run(self, rng: np.random.Generator, max_iter: int) -> tuple[int, int]:
        """Swap until a full pass over all candidates finds no improvement (or ``max_iter`` passes)."""
        block = max(1, min(self.n, _BLOCK_ELEMENTS // self.n))
        swaps = passes = 0
        onehot = self._onehot()
        while passes < max_iter:
            passes += 1
            improved = False
            order = rng.permutation(self.n)
            for s in range(0, self.n, block):
                cand = order[s : s + block]
                cand = cand[~self.is_med[cand]]
                if cand.size == 0:
                    continue
                delta, slot, x = self.best_in_block(cand, onehot)
                if delta < -self.tol:
                    self.swap(slot, x)
                    onehot = self._onehot()
                    swaps += 1
                    improved = True
            if not improved:
                break
        return swaps, passes


def _check_args(n: int, k: Any, max_iter: int, init: Any, n_init: int | None) -> tuple[int, int]:
    """Validated (k, number of starts)."""
    if isinstance(k, bool) or not 1 <= int(k) <= n:
        raise SeparabilityError(f"k must be in [1, {n}] for {n} points, got {k!r}")
    if max_iter < 0:
        raise SeparabilityError(f"max_iter must be >= 0, got {max_iter}")
    starts = n_init if n_init is not None else (1 if init is not None or n > _MULTI_START_MAX_N else 10)
    if isinstance(starts, bool) or starts < 1:
        raise SeparabilityError(f"n_init must be >= 1, got {n_init!r}")
    return int(k), starts


def _check_init(init: Any, k: int, n: int) -> np.ndarray:
    start = np.asarray(init, dtype=np.int64).ravel()
    if start.size != k or np.unique(start).size != k or start.min() < 0 or start.max() >= n:
        raise SeparabilityError(f"init must hold {k} distinct point indices in [0, {n}), got {start.tolist()}")
    return start


def _best_of_starts(
    dm: np.ndarray, k: int, first: np.ndarray, starts: int, seed: int, max_iter: int
) -> tuple[np.ndarray, int, int]:
    """Swap search from ``first`` and from ``starts - 1`` seeded k-medoids++ draws; the lowest loss wins.
    Returns (medoids, total swaps, total passes)."""
    rng = np.random.default_rng(seed)
    best: tuple[float, np.ndarray] | None = None
    swaps = passes = 0
    for attempt in range(starts):
        swapper = _Swapper(dm, first if attempt == 0 else plusplus_medoids(dm, k, rng))
        sw, ps = swapper.run(rng, max_iter)
        swaps, passes = swaps + sw, passes + ps
        loss = float(swapper.dn.sum())
        if best is None or loss < best[0]:
            best = (loss, swapper.med.copy())
    assert best is not None
    return best[1], swaps, passes


def kmedoids(
    d: Any,
    k: int,
    *,
    seed: int = 0,
    max_iter: int = 100,
    init: np.ndarray | list[int] | None = None,
    n_init: int | None = None,
) -> KMedoidsResult:
    """Cluster N points given their [N, N] distance matrix into ``k`` clusters around medoids.

    ``init``: k distinct starting medoids (warm start); default greedy BUILD. ``n_init``: number of
    starts, the first from ``init``/BUILD and the others from seeded k-medoids++ draws; the lowest loss
    wins. Swap search is local: on 1,690 random small sets (N <= 12, every k) a single BUILD start ended
    up to 35% above the exhaustive optimum (0.5% on average), 10 starts at most 9% (< 0.01% on average).
    Default: 10 starts for N <= 100 (each costs well under a millisecond there), otherwise 1 (FasterPAM's
    own setting; large sets have far fewer bad local optima), and 1 with ``init`` (a warm start is meant
    to be cheap).
    ``max_iter``: maximum swap passes per start (each O(N^2)). Labels index into the sorted
    ``medoids``; a point equidistant to several medoids gets the lowest-index one, and every medoid is
    labelled with its own cluster.
    """
    dm = check_distance_matrix(d)
    n = dm.shape[0]
    k, starts = _check_args(n, k, max_iter, init, n_init)
    if init is not None:
        start = _check_init(init, k, n)
    elif k == 1:
        start = np.asarray([int(np.argmin(dm.sum(axis=0)))])  # exact optimum for k = 1
    else:
        start = build_medoids(dm, k)
    swaps = passes = 0
    if 1 < k < n:
        start, swaps, passes = _best_of_starts(dm, k, start, starts, seed, max_iter)
    elif k == 1 and init is not None:
        start = np.asarray([int(np.argmin(dm.sum(axis=0)))])
    medoids = np.sort(start)
    labels = np.argmin(dm[:, medoids], axis=1)
    labels[medoids] = np.arange(k)
    loss = float(dm[np.arange(n), medoids[labels]].sum())
    return KMedoidsResult(medoids=medoids, labels=labels, loss=loss, swaps=swaps, passes=passes)
