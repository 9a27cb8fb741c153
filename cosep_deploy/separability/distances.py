"""Distances between the components' separability profiles, without building the profiles.

The profile of component j is its JM distance for every unordered class pair (times positions): a vector
of C(C-1)/2 * P values, 499,500 per position at C = 1000. We never hold the [N, profile] matrix: the
squared distances follow from the Gram matrix, ``||a - b||^2 = ||a||^2 + ||b||^2 - 2 a.b``, and
``G = J^T J`` accumulates over chunks of class pairs (J: [pairs_in_chunk * P, N]), so memory is
O(N^2 + chunk).

Precision (our choice): by default the JM blocks and the Gram accumulation are float64 and G is updated
with BLAS ``dsyrk`` (the symmetric rank-k update: half the flops of a general matmul). Before each
update every profile row is centred across the N components; distances are translation invariant, and
the smaller Gram entries cancel far less in the formula above. The result matches an explicit profile
computation to ~1e-12 relative. ``precision="float32"`` computes the blocks and each chunk's Gram in
float32 (accumulated into float64): ~2x faster, errors ~1e-7 of the largest distance (but small distances
between near-duplicate channels lose relative accuracy). Threads: the JM blocks run single-threaded in
cache-sized pieces (see :func:`.jm.jm_pairs_`), the Gram update on BLAS threads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.linalg import blas

from cosep_deploy.errors import SeparabilityError
from cosep_deploy.separability.jm import VAR_FLOOR, jm_pairs_

__all__ = ["PRECISIONS", "ProfileDistances", "combine_distances", "profile_distances"]

PRECISIONS = ("float64", "float32")
_CHUNK_ELEMENTS = 1 << 23  # J buffer per Gram update: 64 MB in float64 (4096 rows at N = 2048)
_KERNEL_ELEMENTS = 1 << 16  # elements per JM kernel call: a cache-sized working set (see jm_pairs_)


@dataclasses.dataclass(frozen=True)
class ProfileDistances:
    """N x N Euclidean distances between JM profiles, and how many class pairs went into them."""

    distances: np.ndarray  # float64 [N, N], symmetric, exact zeros on the diagonal
    pairs_used: int
    pairs_total: int
    sampled: bool  # True when class pairs were subsampled (pair_budget); squared distances rescaled
    positions: int = 1  # P: spatial positions per component (1 for gap / linear layers)

    def to_json(self) -> dict[str, Any]:
        return {
            "pairs_used": self.pairs_used,
            "pairs_total": self.pairs_total,
            "sampled": self.sampled,
            "positions": self.positions,
        }


def _checked(arr: Any, what: str) -> np.ndarray:
    a = np.asarray(arr, dtype=np.float64)
    if a.ndim not in (2, 3):
        raise SeparabilityError(f"{what} must have shape [C, N] or [C, N, P], got {list(a.shape)}")
    if not np.all(np.isfinite(a)):
        raise SeparabilityError(f"{what} contains NaN or inf: the statistics are broken (non-finite activations?)")
    return a


def _pair_indices(c: int, budget_pairs: int | None, seed: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """Class-pair index arrays (a < b), all pairs or a uniform sample without replacement (sorted)."""
    ia, ib = np.triu_indices(c, 1)
    if budget_pairs is None or budget_pairs >= ia.size:
        return ia, ib, False
    pick = np.sort(np.random.default_rng(seed).choice(ia.size, size=budget_pairs, replace=False))
    return ia[pick], ib[pick], True


def _checked_stats(
    mean: Any, var: Any, precision: str, pair_budget: int | None, chunk_pairs: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Validated statistics as [C, N, P] arrays (P = 1 for [C, N] input)."""
    mean_a, var_a = _checked(mean, "mean"), _checked(var, "var")
    if mean_a.shape != var_a.shape:
        raise SeparabilityError(f"mean and var shapes differ: {list(mean_a.shape)} vs {list(var_a.shape)}")
    if np.any(var_a < 0):
        raise SeparabilityError("var has negative entries: variances must be >= 0")
    if precision not in PRECISIONS:
        raise SeparabilityError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if pair_budget is not None and pair_budget < 1:
        raise SeparabilityError(f"pair_budget must be >= 1 or None, got {pair_budget}")
    if chunk_pairs is not None and chunk_pairs < 1:
        raise SeparabilityError(f"chunk_pairs must be >= 1 or None, got {chunk_pairs}")
    if mean_a.ndim == 2:
        mean_a, var_a = mean_a[:, :, None], var_a[:, :, None]
    c, n, p = mean_a.shape
    if c < 2:
        raise SeparabilityError(
            f"statistics cover {c} class: JM profiles need at least 2 classes (class pairs); "
            "collect statistics over a labelled set with several classes"
        )
    if n < 1 or p < 1:
        raise SeparabilityError(f"no components to compare (shape {list(mean_a.shape)})")
    return mean_a, var_a


def _profile_gram(
    mean_a: np.ndarray,
    var_a: np.ndarray,
    ia_np: np.ndarray,
    ib_np: np.ndarray,
    *,
    chunk_pairs: int | None,
    precision: str,
    var_floor: float,
) -> np.ndarray:
    """The symmetric [N, N] Gram matrix of the centred JM profiles over the given class pairs, accumulated
    chunk by chunk (memory O(N^2 + chunk))."""
    c, n, p = mean_a.shape
    used = int(ia_np.size)
    dtype = np.float64 if precision == "float64" else np.float32
    m = p * n  # values per class pair, laid out [P, N] so a pair's block is P profile rows of N components

    def layout(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a.transpose(0, 2, 1).reshape(c, m), dtype=dtype)

    floored = np.maximum(var_a, var_floor)
    mu_t, var_t, sd_t = layout(mean_a), layout(floored), layout(np.sqrt(floored))
    chunk = min(chunk_pairs or max(1, _CHUNK_ELEMENTS // m), used)
    sub = min(chunk, max(1, _KERNEL_ELEMENTS // m))
    jbuf = np.empty((chunk * p, n), dtype=dtype)
    scratch = [np.empty((sub, m), dtype=dtype) for _ in range(3)]
    gram = np.zeros((n, n), dtype=np.float64, order="F")
    part = np.zeros((n, n), dtype=np.float32, order="F") if precision == "float32" else None
    for start in range(0, used, chunk):
        stop = min(start + chunk, used)
        for s0 in range(start, stop, sub):
            s1 = min(s0 + sub, stop)
            k = s1 - s0
            rows = jbuf[(s0 - start) * p : (s1 - start) * p].reshape(k, m)  # a view: jbuf is contiguous
            jm_pairs_(
                rows, mu_t, var_t, sd_t, ia_np[s0:s1], ib_np[s0:s1], (scratch[0][:k], scratch[1][:k], scratch[2][:k])
            )
            prof = rows.reshape(-1, n)
            prof -= prof.mean(axis=1, keepdims=True)  # centre profile rows across components (module doc)
        a = jbuf[: (stop - start) * p].T  # [N, rows], Fortran-contiguous: no copy into BLAS
        if part is None:
            gram = blas.dsyrk(1.0, a, beta=1.0, c=gram, trans=0, overwrite_c=1)  # upper triangle: G += J^T J
        else:
            part = blas.ssyrk(1.0, a, beta=0.0, c=part, trans=0, overwrite_c=1)
            gram += part
    upper = np.triu(gram)
    symmetric: np.ndarray = upper + np.triu(upper, 1).T
    return symmetric


def _gram_to_distances(gram: np.ndarray, scale: float) -> np.ndarray:
    """||a - b|| = sqrt(||a||^2 + ||b||^2 - 2 a.b), squared distances scaled by ``scale``."""
    sq = np.diag(gram)
    d2 = sq[:, None] + sq[None, :] - 2.0 * gram
    np.maximum(d2, 0.0, out=d2)  # rounding can push a tiny squared distance below zero
    d2 *= scale
    dist: np.ndarray = np.sqrt(d2)
    np.fill_diagonal(dist, 0.0)
    return dist


def profile_distances(
    mean: Any,
    var: Any,
    *,
    pair_budget: int | None = None,
    seed: int = 0,
    chunk_pairs: int | None = None,
    precision: str = "float64",
    var_floor: float = VAR_FLOOR,
) -> ProfileDistances:
    """Euclidean distances between the JM separability profiles of N components.

    ``mean``, ``var``: per-class statistics [C, N] or [C, N, P] (P positions). ``pair_budget``: maximum
    number of profile dimensions (class pairs x P); above it ``pair_budget // P`` class pairs are sampled
    uniformly without replacement (seeded) and squared distances are scaled by total/used, which makes
    them unbiased. ``chunk_pairs``: class pairs per Gram update (default: a ~64 MB block).
    """
    mean_a, var_a = _checked_stats(mean, var, precision, pair_budget, chunk_pairs)
    c, _, p = mean_a.shape
    pairs_total = c * (c - 1) // 2
    budget = None if pair_budget is None or pairs_total * p <= pair_budget else max(1, pair_budget // p)
    ia_np, ib_np, sampled = _pair_indices(c, budget, seed)
    used = int(ia_np.size)
    gram = _profile_gram(mean_a, var_a, ia_np, ib_np, chunk_pairs=chunk_pairs, precision=precision, var_floor=var_floor)
    dist = _gram_to_distances(gram, pairs_total / used if sampled else 1.0)
    return ProfileDistances(distances=dist, pairs_used=used, pairs_total=pairs_total, sampled=sampled, positions=p)


def combine_distances(distances: Sequence[Any]) -> np.ndarray:
    """Distances over concatenated profiles of coupled layers: ``sqrt(sum_i D_i^2)``.

    Used for a coupling group (residual adds, depthwise pairs): every member's N x N profile distance
    matrix lives in the group's root channel space, and concatenating the members' profiles adds their
    squared distances.
    """
    mats = [np.asarray(d, dtype=np.float64) for d in distances]
    if not mats:
        raise SeparabilityError("combine_distances needs at least one distance matrix")
    shape = mats[0].shape
    if len(shape) != 2 or shape[0] != shape[1]:
        raise SeparabilityError(f"distance matrices must be square [N, N], got {list(shape)}")
    for i, d in enumerate(mats):
        if d.shape != shape:
            raise SeparabilityError(
                f"distance matrix {i} has shape {list(d.shape)}, matrix 0 has {list(shape)}: coupled "
                "members must be mapped into the group's root channel space (same N, same order) first"
            )
        if not np.all(np.isfinite(d)) or np.any(d < 0):
            raise SeparabilityError(f"distance matrix {i} has NaN, inf or negative entries")
    total = np.zeros(shape, dtype=np.float64)
    for d in mats:
        total += d * d
    return np.sqrt(total)
