"""Pruning policy: how many channels each group keeps, and which, for CoSeP and the baselines.

Scoring and policy stay apart: CoSeP decides a count (the MSS knee) *and* the channels (one per
cluster); the baselines take a count from a rule (a uniform ratio, CoSeP's own per-group counts for a
matched comparison, or EMP's effective number) and pick channels by filter L1 norm (``l1``, ``uniform``,
``emp``) or at random (``random``, seeded). Every count is rounded up to ``round_to`` (channel alignment
for the target engine) and clamped to [1, N].
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
    "round_count",
    "scaled_count",
    "top_l1",
]


def round_count(n_keep: int, n: int, round_to: int) -> int:
    """Round a kept count up to a multiple of ``round_to``, clamped to [1, n]."""
    if n < 1:
        raise ConfigError(f"a group needs at least one channel, got {n}")
    return max(1, min(n, math.ceil(max(n_keep, 1) / round_to) * round_to))


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


def scaled_count(base: int, n: int, factor: float, round_to: int) -> int:
    """A group's count scaled by a global factor (for a MACs budget), rounded and clamped."""
    return round_count(round(base * factor), n, round_to)


def counts_from_mapping(counts: Mapping[str, int], root: str, n: int) -> int:
    """A group's count from explicit per-group counts (e.g. CoSeP's, for a matched comparison)."""
    if root not in counts:
        raise ConfigError(f"no kept count given for group {root!r}; known groups: {sorted(counts)[:10]}")
    return max(1, min(n, int(counts[root])))
