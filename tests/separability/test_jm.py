"""JM distance against the closed form evaluated with plain Python math on scalars."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from cosep_deploy.errors import SeparabilityError
from cosep_deploy.separability import VAR_FLOOR, jm_distance


def jm_oracle(ma: float, va: float, mb: float, vb: float, floor: float = VAR_FLOOR) -> float:
    """B = (ma-mb)^2 / (4 (va+vb)) + 0.5 ln((va+vb) / (2 sqrt(va vb))); JM = 2 (1 - exp(-B))."""
    va, vb = max(va, floor), max(vb, floor)
    b = (ma - mb) ** 2 / (4 * (va + vb)) + 0.5 * math.log((va + vb) / (2 * math.sqrt(va * vb)))
    return 2 * (1 - math.exp(-b))


def test_matches_closed_form_on_random_scalars() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        ma, mb = rng.normal(scale=3, size=2)
        va, vb = np.exp(rng.normal(scale=2, size=2))
        got = float(jm_distance(ma, va, mb, vb))
        assert got == pytest.approx(jm_oracle(ma, va, mb, vb), rel=1e-9, abs=1e-13)


def test_elementwise_broadcasting_matches_scalars() -> None:
    rng = np.random.default_rng(1)
    ma, mb = rng.normal(size=(4, 5)), rng.normal(size=5)
    va, vb = rng.random((4, 5)) + 0.01, rng.random(5) + 0.01
    got = jm_distance(ma, va, mb, vb)
    assert got.shape == (4, 5)
    for i in range(4):
        for j in range(5):
            ref = jm_oracle(ma[i, j], va[i, j], mb[j], vb[j])
            assert got[i, j] == pytest.approx(ref, rel=1e-9, abs=1e-13)


def test_equal_distributions_give_zero() -> None:
    for m, v in ((0.0, 1.0), (5.5, 0.3), (-2.0, 1e-8), (1.0, 0.0)):
        assert jm_distance(m, v, m, v) == 0.0


def test_far_apart_means_approach_two() -> None:
    assert float(jm_distance(0.0, 1.0, 3.0, 1.0)) == pytest.approx(jm_oracle(0.0, 1.0, 3.0, 1.0), rel=1e-12)
    far = float(jm_distance(0.0, 1.0, 100.0, 1.0))
    assert 2.0 - 1e-12 <= far <= 2.0
    # monotone in the mean difference
    d = [float(jm_distance(0.0, 1.0, x, 1.0)) for x in np.linspace(0, 10, 21)]
    assert all(b >= a for a, b in itertools.pairwise(d))


def test_variance_ratio_alone_separates() -> None:
    got = float(jm_distance(0.0, 1.0, 0.0, 100.0))
    assert 0 < got < 2
    assert got == pytest.approx(jm_oracle(0.0, 1.0, 0.0, 100.0), rel=1e-12)


def test_zero_variance_is_floored_and_finite() -> None:
    # dead channel against itself: 0; constant vs live channel and two different constants: finite, near 2
    assert jm_distance(0.0, 0.0, 0.0, 0.0) == 0.0
    live = float(jm_distance(0.0, 0.0, 0.0, 1.0))
    assert np.isfinite(live) and live == pytest.approx(jm_oracle(0.0, 0.0, 0.0, 1.0), rel=1e-12)
    consts = float(jm_distance(1.0, 0.0, 2.0, 0.0))
    assert np.isfinite(consts) and consts == pytest.approx(2.0)
    assert float(jm_distance(0.0, 0.0, 0.0, 0.0, var_floor=1e-6)) == 0.0


def test_values_in_range_and_symmetric() -> None:
    rng = np.random.default_rng(2)
    ma, mb = rng.normal(scale=5, size=(2, 1000))
    va, vb = np.exp(rng.normal(scale=4, size=(2, 1000)))
    ab, ba = jm_distance(ma, va, mb, vb), jm_distance(mb, vb, ma, va)
    assert np.all((ab >= 0) & (ab <= 2))
    np.testing.assert_allclose(ab, ba, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((np.nan, 1.0, 0.0, 1.0), "NaN"),
        ((0.0, np.inf, 0.0, 1.0), "NaN or inf"),
        ((0.0, -1.0, 0.0, 1.0), ">= 0"),
    ],
)
def test_bad_input_raises(args: tuple[float, float, float, float], match: str) -> None:
    with pytest.raises(SeparabilityError, match=match):
        jm_distance(*args)
