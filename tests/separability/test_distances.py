"""profile_distances against an explicit profile matrix + scipy cdist; pair sampling; combine_distances."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from cosep_deploy.errors import SeparabilityError
from cosep_deploy.separability import VAR_FLOOR, combine_distances, profile_distances

Pairs = list[tuple[int, int]] | None


def jm_scalar(ma: float, va: float, mb: float, vb: float) -> float:
    va, vb = max(va, VAR_FLOOR), max(vb, VAR_FLOOR)
    b = (ma - mb) ** 2 / (4 * (va + vb)) + 0.5 * math.log((va + vb) / (2 * math.sqrt(va * vb)))
    return 2 * (1 - math.exp(-b))


def naive_profiles(mean: np.ndarray, var: np.ndarray, pairs: Pairs = None) -> np.ndarray:
    """[N, pairs * P] profile matrix built with loops, in (pair, position) order."""
    if mean.ndim == 2:
        mean, var = mean[:, :, None], var[:, :, None]
    c, n, p = mean.shape
    pairs = pairs if pairs is not None else list(itertools.combinations(range(c), 2))
    return np.array(
        [
            [jm_scalar(mean[a, j, q], var[a, j, q], mean[b, j, q], var[b, j, q]) for a, b in pairs for q in range(p)]
            for j in range(n)
        ]
    )


def random_stats(c: int, n: int, p: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = (c, n) if p is None else (c, n, p)
    return rng.normal(size=shape), np.exp(rng.normal(size=shape))


def assert_close(got: np.ndarray, ref: np.ndarray, rel: float) -> None:
    np.testing.assert_allclose(got, ref, rtol=rel, atol=rel * ref.max())


@pytest.mark.parametrize("chunk", [None, 1, 2, 7, 1000])
@pytest.mark.parametrize("p", [None, 3])
def test_matches_explicit_profiles(chunk: int | None, p: int | None) -> None:
    mean, var = random_stats(8, 11, p, seed=3)
    ref = cdist(naive_profiles(mean, var), naive_profiles(mean, var))
    res = profile_distances(mean, var, chunk_pairs=chunk)
    assert res.distances.dtype == np.float64 and res.distances.shape == (11, 11)
    assert_close(res.distances, ref, 1e-6)
    assert res.pairs_used == res.pairs_total == 28 and not res.sampled
    assert res.positions == (p or 1)
    assert np.all(np.diag(res.distances) == 0.0)
    np.testing.assert_array_equal(res.distances, res.distances.T)


def test_near_duplicate_channels_keep_small_distances_accurate() -> None:
    # Gram-trick cancellation is worst for near-identical profiles: check them relative to their own size.
    mean, var = random_stats(12, 6, None, seed=4)
    mean[:, 1] = mean[:, 0] + 1e-4
    ref = cdist(naive_profiles(mean, var), naive_profiles(mean, var))
    got = profile_distances(mean, var, chunk_pairs=5).distances
    assert got[0, 1] == pytest.approx(ref[0, 1], rel=1e-5)
    assert_close(got, ref, 1e-6)


def test_float32_precision_is_close() -> None:
    mean, var = random_stats(10, 9, None, seed=5)
    ref = cdist(naive_profiles(mean, var), naive_profiles(mean, var))
    assert_close(profile_distances(mean, var, precision="float32", chunk_pairs=4).distances, ref, 1e-4)


def test_pair_sampling_uses_budget_and_subset_is_exact() -> None:
    mean, var = random_stats(10, 7, 2, seed=6)  # 45 pairs x 2 positions = 90 profile dimensions
    res = profile_distances(mean, var, pair_budget=40, seed=3)
    assert res.sampled and res.pairs_used == 20 and res.pairs_total == 45
    # the same pairs, chosen again with the seed, give the rescaled distances exactly
    ia, ib = np.triu_indices(10, 1)
    pick = np.sort(np.random.default_rng(3).choice(45, size=20, replace=False))
    pairs = list(zip(ia[pick].tolist(), ib[pick].tolist(), strict=True))
    prof = naive_profiles(mean, var, pairs)
    assert_close(res.distances, cdist(prof, prof) * math.sqrt(45 / 20), 1e-6)
    same = profile_distances(mean, var, pair_budget=40, seed=3)
    np.testing.assert_array_equal(res.distances, same.distances)
    assert not profile_distances(mean, var, pair_budget=90).sampled


def test_pair_sampling_is_unbiased() -> None:
    mean, var = random_stats(12, 6, None, seed=7)  # 66 pairs
    exact = profile_distances(mean, var).distances ** 2
    runs = np.stack([profile_distances(mean, var, pair_budget=10, seed=s).distances ** 2 for s in range(400)])
    avg = runs.mean(axis=0)
    off = ~np.eye(6, dtype=bool)
    # the sampled squared distance is a mean over 10 of 66 pair terms (x 66): its average over 400 seeds is
    # within a few standard errors of the exact value
    stderr = runs.std(axis=0) / math.sqrt(400)
    assert np.all(np.abs(avg - exact)[off] < 5 * stderr[off] + 1e-12)
    assert np.abs(avg - exact)[off].max() / exact[off].mean() < 0.1  # unscaled it would be ~0.85 off
    # and sampling really varies with the seed (the test above could not fail otherwise)
    assert runs.std(axis=0)[off].min() > 0


def test_dead_and_constant_channels_are_finite() -> None:
    mean, var = random_stats(6, 5, None, seed=8)
    mean[:, 0], var[:, 0] = 0.0, 0.0  # dead channel
    mean[:, 1], var[:, 1] = np.arange(6.0), 0.0  # class-constant channel with distinct means
    mean[:, 2], var[:, 2] = 0.0, 0.0  # a second dead channel: identical profile to channel 0
    d = profile_distances(mean, var).distances
    assert np.all(np.isfinite(d))
    assert d[0, 2] == 0.0
    assert d[0, 1] == pytest.approx(math.sqrt(15 * 4.0), rel=1e-9)  # JM 0 vs JM 2 over 15 pairs


def test_single_class_raises() -> None:
    with pytest.raises(SeparabilityError, match="at least 2 classes"):
        profile_distances(np.zeros((1, 4)), np.ones((1, 4)))


@pytest.mark.parametrize(
    ("mean", "var", "match"),
    [
        (np.zeros((3, 4)), np.ones((3, 5)), "shapes differ"),
        (np.full((3, 4), np.nan), np.ones((3, 4)), "NaN"),
        (np.zeros((3, 4)), -np.ones((3, 4)), "negative"),
        (np.zeros(4), np.ones(4), r"\[C, N\]"),
    ],
)
def test_bad_statistics_raise(mean: np.ndarray, var: np.ndarray, match: str) -> None:
    with pytest.raises(SeparabilityError, match=match):
        profile_distances(mean, var)


def test_combine_equals_concatenated_profiles() -> None:
    m1, v1 = random_stats(7, 8, None, seed=9)
    m2, v2 = random_stats(7, 8, 2, seed=10)
    p1, p2 = naive_profiles(m1, v1), naive_profiles(m2, v2)
    both = np.concatenate([p1, p2], axis=1)
    got = combine_distances([profile_distances(m1, v1).distances, profile_distances(m2, v2).distances])
    assert_close(got, cdist(both, both), 1e-6)


def test_combine_checks_shapes() -> None:
    with pytest.raises(SeparabilityError, match="root channel space"):
        combine_distances([np.zeros((3, 3)), np.zeros((4, 4))])
    with pytest.raises(SeparabilityError, match="at least one"):
        combine_distances([])
    with pytest.raises(SeparabilityError, match="square"):
        combine_distances([np.zeros((3, 4))])
