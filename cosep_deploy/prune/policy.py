"""Count and ranking rules shared by the selection methods: EMP's effective number, top-L1, seeded random
picks, and per-group counts given from outside. Alignment lives in :mod:`cosep_deploy.separability.align`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from cosep_deploy.errors import ConfigError

__all__ = [
    "counts_from_mapping",
    "emp_count",
    "emp_retained_mass_bound",
    "random_channels",
    "random_order",
    "top_l1",
]


def emp_count(scores: np.ndarray, *, beta: float = 1.0) -> int:
    """EMP's rule: keep ``floor(beta * N_eff)`` entries, N_eff = 1 / sum(w_i^2), w_i = |s_i| / sum |s|.

    N_eff is the inverse Simpson index of the normalised scores: N for equal scores, 1 when one score
    holds all the mass. Clamped to [1, N]. All-zero scores keep everything (no information to rank by).
    """
    s = np.abs(np.asarray(scores, dtype=np.float64).ravel())
    n = s.size
    if n == 0:
        raise ConfigError("EMP needs at least one score")
    if not beta > 0:
        raise ConfigError(f"EMP beta must be > 0, got {beta}")
    total = s.sum()
    if total == 0 or not np.isfinite(total):
        return n
    w = s / total
    n_eff = 1.0 / float(np.sum(w * w))
    return max(1, min(n, math.floor(beta * n_eff + 1e-9)))


def emp_retained_mass_bound(n: int, kept: int) -> float:
    """EMP Theorem 4.2's lower bound on the retained mass when ``kept`` of ``n`` entries are kept."""
    if n <= 1:
        return 1.0
    nu = kept
    return nu / n + ((n - nu) / n) * math.sqrt(max(n - nu - 1, 0) / ((nu + 1) * (n - 1)))


def top_l1(norms: np.ndarray, n_keep: int) -> list[int]:
    """Indices of the ``n_keep`` largest filter norms (ties: lower index first), sorted."""
    order = np.lexsort((np.arange(norms.size), -np.asarray(norms, dtype=np.float64)))
    return sorted(int(i) for i in order[:n_keep])


def random_channels(n: int, n_keep: int, *, seed: int, salt: str) -> list[int]:
    """``n_keep`` channels chosen uniformly at random, reproducible per (seed, group)."""
    import zlib

    rng = np.random.default_rng([seed, zlib.crc32(salt.encode())])
    return sorted(int(i) for i in rng.choice(n, size=n_keep, replace=False))


def random_order(n: int, *, seed: int, salt: str) -> np.ndarray:
    """A seeded random ranking of ``n`` channels (per group), for random fills."""
    import zlib

    return np.random.default_rng([seed, zlib.crc32(salt.encode()), 2]).permutation(n)


def counts_from_mapping(counts: Mapping[str, int], root: str, n: int) -> int:
    """A group's count from explicit per-group counts (e.g. CoSeP's, for a matched comparison)."""
    if root not in counts:
        raise ConfigError(f"no kept count given for group {root!r}; known groups: {sorted(counts)[:10]}")
    return max(1, min(n, int(counts[root])))
