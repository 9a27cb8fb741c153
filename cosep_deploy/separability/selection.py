"""How many channels a layer keeps, and which: k-medoids for a range of k, MSS curve, Kneedle knee.

Paper mode (``k_grid="all"``) clusters for every k in 2..N-1. For large layers (``"auto"`` above
``exhaustive_max_n`` channels) we evaluate a coarse grid of ~28 k (half geometric, half linear), locate
the knee, then evaluate every k between the coarse neighbours of the knee and locate it again. The knee is
always taken on a curve over every integer k, with MSS linearly interpolated between evaluated points:
Kneedle's polynomial fit and normalisation then weigh the k axis as in paper mode instead of
over-weighting the densely refined bracket. Each k is warm-started from the previous one (one BUILD step
for k + 1, farthest points for larger jumps), which also keeps the sweep cheap.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from cosep_deploy.errors import SeparabilityError
from cosep_deploy.separability.kmedoids import build_medoids, check_distance_matrix, grow_medoids, kmedoids
from cosep_deploy.separability.knee import find_knee
from cosep_deploy.separability.silhouette import mean_simplified_silhouette

__all__ = ["KEEP_RULES", "K_GRIDS", "ChannelSelection", "coarse_k_grid", "select_channels"]

K_GRIDS = ("auto", "all")
KEEP_RULES = ("max_l1", "medoid")
ProgressFn = Callable[[int, "int | None"], None]


@dataclasses.dataclass(frozen=True)
class ChannelSelection:
    """The channels one layer (or coupled group) keeps, and how that was decided.

    ``k``: the knee (or the fallback k) before rounding; ``n_kept``: after rounding up to ``round_to``.
    ``grid``: "all" (every k), "coarse+refine", or "none" (degenerate input, nothing was clustered; see
    ``note``). ``curve``: the evaluated (k, MSS) points, ascending in k.
    """

    kept: tuple[int, ...]
    k: int
    n_kept: int
    n_channels: int
    curve: tuple[tuple[int, float], ...]
    fallback: bool
    grid: str
    keep: str = "max_l1"
    round_to: int = 1
    medoids: tuple[int, ...] = ()
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kept": list(self.kept),
            "k": self.k,
            "n_kept": self.n_kept,
            "n_channels": self.n_channels,
            "curve": [[k, s] for k, s in self.curve],
            "fallback": self.fallback,
            "grid": self.grid,
            "keep": self.keep,
            "round_to": self.round_to,
            "medoids": list(self.medoids),
            "note": self.note,
        }


def coarse_k_grid(n: int, points: int = 28) -> list[int]:
    """About ``points`` values of k in [2, n-1]: half geometric (dense at small k), half linear."""
    hi = n - 1
    if hi - 2 + 1 <= points:
        return list(range(2, hi + 1))
    half = points // 2
    ks = np.concatenate([np.geomspace(2, hi, half), np.linspace(2, hi, points - half)])
    return sorted({int(v) for v in np.clip(np.round(ks), 2, hi)})


class _Sweep:
    """k-medoids + MSS for increasing k, each warm-started from the closest smaller k evaluated."""

    def __init__(self, d: np.ndarray, seed: int, progress: ProgressFn | None) -> None:
        self.d, self.seed, self.progress = d, seed, progress
        self.medoids: dict[int, np.ndarray] = {}
        self.mss: dict[int, float] = {}
        self.total: int | None = None

    def eval(self, k: int) -> None:
        if k in self.mss:
            return
        below = [j for j in self.medoids if j < k]
        if not below:
            init = build_medoids(self.d, k)
        else:
            prev = self.medoids[max(below)]
            # one greedy BUILD step is O(N^2), like a swap pass; farther jumps add farthest points (O(N) each)
            step = k - prev.size
            init = build_medoids(self.d, k, start=prev) if step == 1 else grow_medoids(self.d, prev, k)
        res = kmedoids(self.d, k, seed=self.seed, init=init)
        self.medoids[k] = res.medoids
        self.mss[k] = mean_simplified_silhouette(self.d, res.medoids, res.labels)
        if self.progress is not None:
            self.progress(len(self.mss), self.total)

    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        ks = np.array(sorted(self.mss))
        return ks, np.array([self.mss[int(k)] for k in ks])

    def dense_knee(self, n: int) -> int | None:
        """Knee on every integer k in [2, n-1], MSS interpolated linearly between evaluated k."""
        ks, ys = self.curve()
        xs = np.arange(2, n)
        return find_knee(xs, np.interp(xs, ks, ys))


def _finish(
    d: np.ndarray,
    norms: np.ndarray,
    medoids: np.ndarray,
    k: int,
    *,
    keep: str,
    round_to: int,
    curve: tuple[tuple[int, float], ...],
    fallback: bool,
    grid: str,
    note: str | None,
) -> ChannelSelection:
    """One channel per cluster (largest L1 norm or the medoid), then round the count up to ``round_to``."""
    n = d.shape[0]
    labels = np.argmin(d[:, medoids], axis=1)
    labels[medoids] = np.arange(medoids.size)
    chosen: set[int] = set()
    for c, m in enumerate(medoids):
        members = np.flatnonzero(labels == c)
        chosen.add(int(m) if keep == "medoid" else int(members[np.argmax(norms[members])]))
    target = min(n, math.ceil(len(chosen) / round_to) * round_to)
    # fill with the highest-norm channels not chosen yet (ties: lower index first)
    for idx in np.lexsort((np.arange(n), -norms)):
        if len(chosen) >= target:
            break
        chosen.add(int(idx))
    kept = tuple(sorted(chosen))
    return ChannelSelection(
        kept=kept,
        k=k,
        n_kept=len(kept),
        n_channels=n,
        keep=keep,
        round_to=round_to,
        medoids=tuple(int(m) for m in medoids),
        curve=curve,
        fallback=fallback,
        grid=grid,
        note=note,
    )


def select_channels(
    d: Any,
    filter_norms: Any,
    *,
    k_grid: str = "auto",
    round_to: int = 1,
    keep: str = "max_l1",
    seed: int = 0,
    progress: ProgressFn | None = None,
    exhaustive_max_n: int = 64,
    coarse_points: int = 28,
) -> ChannelSelection:
    """Choose the channels to keep from their [N, N] profile distance matrix and L1 filter norms.

    Degenerate inputs (documented, never NaN): N < 3 keeps every channel (``fallback=True``, grid "none");
    an all-zero matrix (every profile identical, e.g. all channels dead) is one cluster: k = 1, keep the
    channel of largest norm (or channel 0 for ``keep="medoid"``), then round up. If Kneedle finds no knee,
    k is the evaluated k of maximum MSS (smallest such k) and ``fallback=True``.
    ``progress(done, total)`` is called after each evaluated k; with the "auto" grid ``total`` grows once
    the refinement bracket is known.
    """
    dm = check_distance_matrix(d)
    n = dm.shape[0]
    norms = np.asarray(filter_norms, dtype=np.float64).ravel()
    if norms.shape != (n,) or not np.all(np.isfinite(norms)):
        raise SeparabilityError(
            f"filter_norms must be {n} finite values (one per channel), got shape {list(norms.shape)}"
        )
    if k_grid not in K_GRIDS:
        raise SeparabilityError(f"k_grid must be one of {K_GRIDS}, got {k_grid!r}")
    if keep not in KEEP_RULES:
        raise SeparabilityError(f"keep must be one of {KEEP_RULES}, got {keep!r}")
    if isinstance(round_to, bool) or not isinstance(round_to, int | np.integer) or round_to < 1:
        raise SeparabilityError(f"round_to must be an int >= 1, got {round_to!r}")
    round_to = int(round_to)
    if n < 3:
        note = f"{n} channel(s): too few to cluster (k-medoids needs k in 2..N-1); all kept"
        return ChannelSelection(
            kept=tuple(range(n)),
            k=n,
            n_kept=n,
            n_channels=n,
            curve=(),
            fallback=True,
            grid="none",
            keep=keep,
            round_to=round_to,
            medoids=tuple(range(n)),
            note=note,
        )
    if float(dm.max()) == 0.0:
        note = (
            "all profile distances are 0 (channels indistinguishable by class separability, e.g. all "
            "dead or constant): one cluster, k = 1"
        )
        first = np.zeros(1, dtype=np.int64)
        return _finish(
            dm, norms, first, 1, keep=keep, round_to=round_to, curve=(), fallback=True, grid="none", note=note
        )

    sweep = _Sweep(dm, seed, progress)
    if k_grid == "all" or n <= exhaustive_max_n:
        grid = "all"
        sweep.total = n - 2
        for k in range(2, n):
            sweep.eval(k)
        ks, ys = sweep.curve()
        knee = find_knee(ks, ys)
    else:
        grid = "coarse+refine"
        coarse = coarse_k_grid(n, coarse_points)
        sweep.total = len(coarse)
        for k in coarse:
            sweep.eval(k)
        first_knee = sweep.dense_knee(n)
        knee = first_knee
        if first_knee is not None:
            lo = max([c for c in coarse if c < first_knee], default=2)
            hi = min([c for c in coarse if c > first_knee], default=n - 1)
            todo = [k for k in range(lo + 1, hi) if k not in sweep.mss]
            sweep.total = len(coarse) + len(todo)
            for k in todo:
                sweep.eval(k)
            knee = sweep.dense_knee(n)
            if knee is None:
                knee = first_knee
            sweep.eval(knee)  # the final knee may fall outside the refined bracket
    ks, ys = sweep.curve()
    curve = tuple((int(k), float(s)) for k, s in zip(ks, ys, strict=True))
    reason = None
    fallback = knee is None
    if knee is None:
        knee = int(ks[int(np.argmax(ys))])
        reason = "Kneedle found no knee on the MSS curve: k of maximum MSS"
    return _finish(
        dm,
        norms,
        sweep.medoids[knee],
        knee,
        keep=keep,
        round_to=round_to,
        curve=curve,
        fallback=fallback,
        grid=grid,
        note=reason,
    )
