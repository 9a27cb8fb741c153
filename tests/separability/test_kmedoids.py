"""k-medoids against exhaustive search; MSS against a direct double loop."""

from __future__ import annotations

import itertools
import math
import statistics

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from cosep_deploy.errors import SeparabilityError
from cosep_deploy.separability import kmedoids, mean_simplified_silhouette
from cosep_deploy.separability.silhouette import mss_standard_error, simplified_silhouettes


def exhaustive_loss(d: np.ndarray, k: int) -> float:
    return min(float(d[:, list(c)].min(axis=1).sum()) for c in itertools.combinations(range(d.shape[0]), k))


def random_case(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n, dims = int(rng.integers(4, 13)), int(rng.integers(1, 4))
    x = rng.normal(size=(n, dims))
    return cdist(x, x)


def blobs(seed: int, centers: int = 4, per: int = 6, spread: float = 0.05) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.repeat(rng.normal(size=(centers, 3)) * 10, per, axis=0)
    x += rng.normal(size=(centers * per, 3)) * spread
    return cdist(x, x)


def test_close_to_exhaustive_optimum() -> None:
    ratios = []
    for seed in range(60):
        d = random_case(seed)
        for k in range(1, d.shape[0] + 1):
            res = kmedoids(d, k, seed=seed)
            best = exhaustive_loss(d, k)
            assert res.loss >= best - 1e-9
            ratios.append(res.loss / best if best > 0 else 1.0)
    ratios_a = np.array(ratios)
    assert ratios_a.mean() < 1.02
    assert ratios_a.max() < 1.10


def test_single_start_is_a_local_optimum() -> None:
    # with one start no single swap may improve the result (checked by brute force)
    for seed in range(15):
        d = random_case(100 + seed)
        n = d.shape[0]
        for k in range(2, n):
            res = kmedoids(d, k, seed=seed, n_init=1)
            meds = list(res.medoids)
            for i, c in itertools.product(range(k), range(n)):
                if c in meds:
                    continue
                trial = [*meds[:i], c, *meds[i + 1 :]]
                assert d[:, trial].min(axis=1).sum() >= res.loss - 1e-9


def test_result_is_consistent() -> None:
    d = random_case(3)
    res = kmedoids(d, 3, seed=1)
    assert list(res.medoids) == sorted(res.medoids) and len(set(res.medoids)) == 3
    np.testing.assert_array_equal(res.labels[res.medoids], np.arange(3))
    assert res.loss == pytest.approx(d[np.arange(d.shape[0]), res.medoids[res.labels]].sum())
    assert res.loss == pytest.approx(d[:, res.medoids].min(axis=1).sum())


def test_deterministic_for_a_seed_and_stable_on_clusters() -> None:
    d = blobs(0)
    a, b = kmedoids(d, 4, seed=5), kmedoids(d, 4, seed=5)
    np.testing.assert_array_equal(a.medoids, b.medoids)
    results = {tuple(kmedoids(d, 4, seed=s, n_init=1).medoids) for s in range(8)}
    assert len(results) == 1
    (meds,) = results
    assert sorted(m // 6 for m in meds) == [0, 1, 2, 3]  # one medoid per planted blob


def test_large_set_with_single_start() -> None:
    d = blobs(1, centers=8, per=30, spread=0.5)  # N = 240 > 100: default is one BUILD start
    res = kmedoids(d, 8, seed=0)
    assert sorted(m // 30 for m in res.medoids) == list(range(8))


def test_warm_start_never_worse_than_init() -> None:
    d = random_case(7)
    init = [0, 1, 2]
    res = kmedoids(d, 3, init=init)
    assert res.loss <= d[:, init].min(axis=1).sum() + 1e-12


def test_edge_k_values() -> None:
    d = random_case(8)
    n = d.shape[0]
    one = kmedoids(d, 1)
    assert one.loss == pytest.approx(d.sum(axis=0).min())
    full = kmedoids(d, n)
    assert full.loss == 0.0 and list(full.medoids) == list(range(n))
    zero = kmedoids(np.zeros((5, 5)), 2)
    assert zero.loss == 0.0 and len(set(zero.medoids)) == 2


@pytest.mark.parametrize(
    ("d", "k", "kw", "match"),
    [
        (np.zeros((4, 4)), 0, {}, "k must be"),
        (np.zeros((4, 4)), 5, {}, "k must be"),
        (np.zeros((4, 3)), 2, {}, "square"),
        (np.full((3, 3), np.nan), 2, {}, "NaN"),
        (-np.ones((3, 3)), 2, {}, "negative"),
        (np.zeros((4, 4)), 2, {"init": [1, 1]}, "distinct"),
        (np.zeros((4, 4)), 2, {"n_init": 0}, "n_init"),
    ],
)
def test_bad_input_raises(d: np.ndarray, k: int, kw: dict[str, object], match: str) -> None:
    with pytest.raises(SeparabilityError, match=match):
        kmedoids(d, k, **kw)  # type: ignore[arg-type]


def mss_oracle(d: np.ndarray, medoids: list[int], labels: list[int]) -> float:
    scores = []
    for i in range(d.shape[0]):
        if i in medoids:
            continue
        a = d[i, medoids[labels[i]]]
        if a == 0:
            continue  # the authors leave out every point on its medoid (duplicates of a medoid too)
        others = [d[i, m] for j, m in enumerate(medoids) if j != labels[i]]
        b = sum(others) / len(others)
        scores.append(0.0 if b == 0 else 1 - a / b)
    return sum(scores) / len(scores) if scores else 0.0


def test_mss_matches_double_loop() -> None:
    for seed in range(20):
        d = random_case(200 + seed)
        for k in range(2, d.shape[0]):
            res = kmedoids(d, k, seed=seed)
            got = mean_simplified_silhouette(d, res.medoids, res.labels)
            ref = mss_oracle(d, list(res.medoids), list(res.labels))
            assert got == pytest.approx(ref, rel=1e-12, abs=1e-15)


def test_standard_error_of_mss_matches_statistics_stdev() -> None:
    """The knee rule's noise level: sd(s) / sqrt(m) over the scored points, against the stdlib."""
    for seed in range(5):
        d = blobs(300 + seed, spread=0.3)  # 24 points
        for k in (2, 3, 4, 12):
            res = kmedoids(d, k, seed=seed)
            s = simplified_silhouettes(d, res.medoids, res.labels)
            assert float(s.mean()) == pytest.approx(mss_oracle(d, list(res.medoids), list(res.labels)), rel=1e-12)
            assert s.size >= 2
            ref = statistics.stdev(s.tolist()) / math.sqrt(s.size)
            assert mss_standard_error(s) == pytest.approx(ref, rel=1e-12)
    assert mss_standard_error(np.array([0.5])) == 0.0 and mss_standard_error(np.zeros(0)) == 0.0


def test_mss_on_arbitrary_labels_and_degenerate_cases() -> None:
    d = random_case(5)
    n = d.shape[0]
    meds, labels = [0, 2], [i % 2 for i in range(n)]  # not nearest-medoid labels: used as given
    labels[0], labels[2] = 0, 1
    assert mean_simplified_silhouette(d, meds, labels) == pytest.approx(mss_oracle(d, meds, labels))
    assert mean_simplified_silhouette(d, [0], [0] * n) == 0.0  # k = 1: no other medoid
    assert mean_simplified_silhouette(d, list(range(n)), list(range(n))) == 0.0  # no non-medoid point
    assert mean_simplified_silhouette(np.zeros((4, 4)), [0, 1], [0, 1, 0, 0]) == 0.0  # only a = 0 points
    with pytest.raises(SeparabilityError):
        mean_simplified_silhouette(d, [0, n], [0] * n)


def test_mss_leaves_out_duplicates_of_a_medoid() -> None:
    x = np.array([[0.0], [0.0], [0.0], [1.0], [10.0], [10.5]])  # points 1 and 2 duplicate medoid 0
    d = cdist(x, x)
    meds, labels = [0, 4], [0, 0, 0, 0, 1, 1]
    got = mean_simplified_silhouette(d, meds, labels)
    only_scored = np.mean([1 - 1.0 / 9.0, 1 - 0.5 / 10.5])  # points 3 and 5; the duplicates would score 1
    assert got == pytest.approx(only_scored) and got == pytest.approx(mss_oracle(d, meds, labels))
