"""How many channels a layer keeps, and which: k-medoids for a range of k, MSS curve, knee rule.

Paper mode (``k_grid="all"``) clusters for every k in 2..N (the authors' grid includes N). For large
layers (``"auto"`` above ``exhaustive_max_n`` channels) we evaluate a coarse grid of ~28 k (half
geometric, half linear), locate the knee, then evaluate every k between the coarse neighbours of the knee
and locate it again. The knee is always taken on a curve over every integer k, with MSS linearly
interpolated between evaluated points, so the k axis is weighed as in paper mode. Each k is warm-started
from the previous one (one BUILD step for k + 1, farthest points for larger jumps); layers of up to 100
channels also get 9 seeded k-medoids++ starts per k and keep the lowest-loss clustering. The knee rule
(:mod:`.knee`: ``robust`` by default, ``paper`` for the literal setting) and the alignment
(:mod:`.align`) are recorded with the selection.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from cosep_deploy.errors import SeparabilityError
from cosep_deploy.separability.align import Alignment, align_count, align_kept
from cosep_deploy.separability.kmedoids import build_medoids, check_distance_matrix, grow_medoids, kmedoids
from cosep_deploy.separability.knee import KNEE_RULES, KneeBounds, KneeDecision, choose_knee
from cosep_deploy.separability.silhouette import mss_and_standard_error

__all__ = ["KEEP_RULES", "K_GRIDS", "ChannelSelection", "coarse_k_grid", "norm_order", "select_channels"]

K_GRIDS = ("auto", "all")
KEEP_RULES = ("max_l1", "medoid")
ProgressFn = Callable[[int, "int | None"], None]
_RESTARTS = 10  # k-medoids starts per k for layers of up to _RESTARTS_MAX_N channels
_RESTARTS_MAX_N = 100


@dataclasses.dataclass(frozen=True)
class ChannelSelection:
    """The channels one layer (or coupled group) keeps, and how that was decided.

    ``k``: the knee rule's count (before alignment); ``n_kept``: after alignment (``alignment`` says how).
    ``grid``: "all" (every k), "coarse+refine", or "none" (degenerate input, nothing was clustered; see
    ``note``). ``curve``: the evaluated (k, MSS) points, ascending in k. ``knee``: the rule's record.
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
    knee: KneeDecision | None = None
    alignment: Alignment | None = None
    picked: tuple[int, ...] = ()  # one channel per cluster at k, before alignment
    starts: int = 1  # k-medoids starts per k (lowest loss kept)

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
            "knee": self.knee.to_json() if self.knee is not None else None,
            "alignment": self.alignment.to_json() if self.alignment is not None else None,
            "kmedoids_starts": self.starts,
        }


def coarse_k_grid(n: int, points: int = 28) -> list[int]:
    """About ``points`` values of k in [2, n]: half geometric (dense at small k), half linear."""
    hi = n
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
        self.se: dict[int, float] = {}  # standard error of each MSS (a mean over channels)
        self.total: int | None = None
        # several starts per k (the warm start and seeded k-medoids++ draws), lowest loss kept: the MSS curve
        # then describes the best clustering found, not one scan order's local optimum
        self.restarts = _RESTARTS if d.shape[0] <= _RESTARTS_MAX_N else 1

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
        res = kmedoids(self.d, k, seed=self.seed, init=init, n_init=self.restarts)
        self.medoids[k] = res.medoids
        self.mss[k], self.se[k] = mss_and_standard_error(self.d, res.medoids, res.labels)
        if self.progress is not None:
            self.progress(len(self.mss), self.total)

    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        ks = np.array(sorted(self.mss))
        return ks, np.array([self.mss[int(k)] for k in ks])

    def knee(self, n: int, rule: str, bounds: KneeBounds, *, dense: bool) -> KneeDecision:
        """The knee rule on every integer k in [2, n] (MSS and its standard error interpolated linearly
        between evaluated k)."""
        ks, ys = self.curve()
        se = np.array([self.se[int(k)] for k in ks])
        if not dense:
            return choose_knee(ks, ys, n=n, rule=rule, bounds=bounds, se=se)
        xs = np.arange(2, n + 1)
        return choose_knee(xs, np.interp(xs, ks, ys), n=n, rule=rule, bounds=bounds, se=np.interp(xs, ks, se))


def _one_per_cluster(d: np.ndarray, norms: np.ndarray, medoids: np.ndarray, keep: str) -> tuple[int, ...]:
    """One channel per cluster: the largest L1 norm (or the medoid)."""
    labels = np.argmin(d[:, medoids], axis=1)
    labels[medoids] = np.arange(medoids.size)
    chosen: set[int] = set()
    for c, m in enumerate(medoids):
        members = np.flatnonzero(labels == c)
        chosen.add(int(m) if keep == "medoid" else int(members[np.argmax(norms[members])]))
    return tuple(sorted(chosen))


def norm_order(norms: np.ndarray) -> np.ndarray:
    """Channels by decreasing norm (ties: lower index first)."""
    return np.lexsort((np.arange(norms.size), -np.asarray(norms, dtype=np.float64)))


def _finish(
    d: np.ndarray,
    norms: np.ndarray,
    medoids: np.ndarray,
    knee: KneeDecision,
    *,
    keep: str,
    round_to: int,
    curve: tuple[tuple[int, float], ...],
    grid: str,
    starts: int = 1,
) -> ChannelSelection:
    """One channel per cluster, then align the count (filling with the highest-norm channels)."""
    n = d.shape[0]
    picked = _one_per_cluster(d, norms, medoids, keep)
    alignment = align_count(len(picked), n, round_to)
    kept = align_kept(picked, alignment.aligned, norm_order(norms))
    return ChannelSelection(
        kept=kept,
        k=knee.k,
        n_kept=len(kept),
        n_channels=n,
        keep=keep,
        round_to=round_to,
        medoids=tuple(int(m) for m in medoids),
        curve=curve,
        fallback=knee.fallback,
        grid=grid,
        note=knee.why if knee.fallback else None,
        knee=knee,
        alignment=alignment,
        picked=picked,
        starts=starts,
    )


def _check_args(d: Any, filter_norms: Any, k_grid: str, keep: str, round_to: Any, knee_rule: str) -> tuple[Any, ...]:
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
    if knee_rule not in KNEE_RULES:
        raise SeparabilityError(f"knee rule must be one of {KNEE_RULES}, got {knee_rule!r}")
    if isinstance(round_to, bool) or not isinstance(round_to, int | np.integer) or round_to < 1:
        raise SeparabilityError(f"round_to must be an int >= 1, got {round_to!r}")
    return dm, norms, int(round_to)


def _sweep_knee(
    sweep: _Sweep, n: int, k_grid: str, exhaustive_max_n: int, coarse_points: int, rule: str, bounds: KneeBounds
) -> tuple[KneeDecision, str]:
    if k_grid == "all" or n <= exhaustive_max_n:
        sweep.total = n - 1
        for k in range(2, n + 1):
            sweep.eval(k)
        return sweep.knee(n, rule, bounds, dense=False), "all"
    coarse = coarse_k_grid(n, coarse_points)
    sweep.total = len(coarse)
    for k in coarse:
        sweep.eval(k)
    first = sweep.knee(n, rule, bounds, dense=True)
    lo = max([c for c in coarse if c < first.k], default=2)
    hi = min([c for c in coarse if c > first.k], default=n)
    todo = [k for k in range(lo + 1, hi) if k not in sweep.mss]
    sweep.total = len(coarse) + len(todo)
    for k in todo:
        sweep.eval(k)
    knee = sweep.knee(n, rule, bounds, dense=True)
    sweep.eval(knee.k)  # the final knee may fall outside the refined bracket
    return knee, "coarse+refine"


def select_channels(
    d: Any,
    filter_norms: Any,
    *,
    k_grid: str = "auto",
    round_to: int = 1,
    keep: str = "max_l1",
    seed: int = 0,
    knee_rule: str = "robust",
    bounds: KneeBounds | None = None,
    progress: ProgressFn | None = None,
    exhaustive_max_n: int = 64,
    coarse_points: int = 28,
) -> ChannelSelection:
    """Choose the channels to keep from their [N, N] profile distance matrix and L1 filter norms.

    Degenerate inputs (documented, never NaN): N < 3 keeps every channel (``fallback=True``, grid "none");
    an all-zero matrix (every profile identical, e.g. all channels dead) is one cluster: k = 1, keep the
    channel of largest norm (or channel 0 for ``keep="medoid"``), then align. Otherwise the knee rule
    (``knee_rule``, ``bounds``) sets k; see :mod:`cosep_deploy.separability.knee`.
    ``progress(done, total)`` is called after each evaluated k; with the "auto" grid ``total`` grows once
    the refinement bracket is known.
    """
    dm, norms, round_to = _check_args(d, filter_norms, k_grid, keep, round_to, knee_rule)
    n = dm.shape[0]
    if n < 3:
        why = f"{n} channel(s): too few to cluster; all kept"
        every = tuple(range(n))
        return ChannelSelection(
            kept=every,
            k=n,
            n_kept=n,
            n_channels=n,
            curve=(),
            fallback=True,
            grid="none",
            keep=keep,
            round_to=round_to,
            medoids=every,
            note=why,
            knee=KneeDecision(n, knee_rule, None, why, True),
            alignment=Alignment(round_to, n, n),
            picked=every,
        )
    if float(dm.max()) == 0.0:
        why = (
            "all profile distances are 0 (channels indistinguishable by class separability, e.g. all "
            "dead or constant): one cluster, k = 1"
        )
        knee = KneeDecision(1, knee_rule, None, why, True)
        first = np.zeros(1, dtype=np.int64)
        return _finish(dm, norms, first, knee, keep=keep, round_to=round_to, curve=(), grid="none")
    sweep = _Sweep(dm, seed, progress)
    knee, grid = _sweep_knee(sweep, n, k_grid, exhaustive_max_n, coarse_points, knee_rule, bounds or KneeBounds())
    sweep.eval(knee.k)
    ks, ys = sweep.curve()
    curve = tuple((int(k), float(s)) for k, s in zip(ks, ys, strict=True))
    meds = sweep.medoids[knee.k]
    return _finish(dm, norms, meds, knee, keep=keep, round_to=round_to, curve=curve, grid=grid, starts=sweep.restarts)
