"""find_knee: kneed's Kneedle with the paper's settings, plus the no-knee cases."""

from __future__ import annotations

import numpy as np
import pytest
from kneed import KneeLocator

from cosep_deploy.errors import SeparabilityError
from cosep_deploy.separability import KneeBounds, choose_knee, find_knee
from cosep_deploy.separability.knee import isotonic_increasing


def test_same_knee_as_kneed_with_paper_settings() -> None:
    ks = np.arange(2, 60)
    scores = 1 - np.exp(-ks / 8.0)
    ref = KneeLocator(
        ks, scores, S=1.0, curve="concave", direction="increasing", interp_method="polynomial", polynomial_degree=2
    ).knee
    assert ref is not None
    assert find_knee(ks, scores) == int(ref)


def test_knee_of_a_step_curve_and_unsorted_input() -> None:
    ks = np.arange(2, 10)
    scores = np.where(ks >= 5, 1.0, 0.5 + 0.15 * (ks - 2))
    assert find_knee(ks, scores) == 5
    order = np.random.default_rng(0).permutation(ks.size)
    assert find_knee(ks[order], scores[order]) == 5


def test_interp1d_option_is_passed_through() -> None:
    ks = np.arange(2, 40)
    scores = np.minimum(ks, 10) / 10.0
    assert find_knee(ks, scores, interp_method="interp1d") == 10


@pytest.mark.parametrize(
    ("ks", "scores"),
    [
        ([2, 3], [0.1, 0.5]),
        ([], []),
        ([2, 3, 4, 5], [0.5, 0.5, 0.5, 0.5]),
        ([2, 3, 4, 5, 6], [0.1, 0.2, 0.3, 0.4, 0.5]),
    ],
)
def test_no_knee_returns_none(ks: list[int], scores: list[float]) -> None:
    assert find_knee(ks, scores) is None


def test_bad_input_raises() -> None:
    with pytest.raises(SeparabilityError, match="length"):
        find_knee([1, 2, 3], [0.1, 0.2])
    with pytest.raises(SeparabilityError, match="finite"):
        find_knee([1, 2, 3], [0.1, np.nan, 0.3])


def _exp_curve(tau: float, n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    ks = np.arange(2, n + 1)  # the authors' grid: 2..N
    return ks, 1 - np.exp(-ks / tau)


def test_robust_rule_follows_the_curve() -> None:
    """Issue 15's acceptance: on 1 - exp(-k/tau) with N = 64 the knee moves with tau."""
    knees = {tau: choose_knee(*_exp_curve(tau), n=64).k for tau in (2, 4, 8, 16)}
    assert knees[2] <= 12 and knees[16] - knees[2] >= 10
    assert knees[2] < knees[4] < knees[8] < knees[16]
    for tau in (2, 4, 8, 16):
        d = choose_knee(*_exp_curve(tau), n=64)
        assert d.rule == "robust" and not d.fallback and d.bound is None and d.kneedle == d.k


def test_paper_rule_is_the_literal_setting_and_barely_moves() -> None:
    knees = [choose_knee(*_exp_curve(tau), n=64, rule="paper").k for tau in (2, 4, 8, 16)]
    assert all(26 <= k <= 34 for k in knees)  # the parabola's answer: around the middle of [2, 64]
    ks, ys = _exp_curve(8)
    assert choose_knee(ks, ys, n=64, rule="paper").k == find_knee(ks, ys)


def test_robust_rule_ignores_the_end_jump_and_noise() -> None:
    rng = np.random.default_rng(0)
    ks, ys = _exp_curve(6)
    noisy = ys + rng.normal(scale=0.01, size=ys.size)
    noisy[-3:] = [1.2, 1.5, 2.0]  # MSS jumps where only near-duplicates remain outside the medoids
    d = choose_knee(ks, noisy, n=64)
    assert abs(d.k - choose_knee(ks, ys, n=64).k) <= 3
    assert max(k for k, _ in d.used) <= 64 - 7  # k leaving fewer than 10% of N outside the medoids dropped


def test_no_knee_never_keeps_everything_and_bounds_are_recorded() -> None:
    ks = np.arange(2, 65)
    convex = (ks / 64.0) ** 3  # no concave bend
    d = choose_knee(ks, convex, n=64)
    assert d.fallback and "no bend" in d.why  # no evidence for more clusters: few kept
    assert d.k == 8 and d.bound == "min_keep"
    linear = ks / 64.0 + np.where(ks % 2 == 0, 0.002, -0.002)  # an even rise with noise: no bend either
    e = choose_knee(ks, linear, n=64)
    assert e.fallback and e.k < 16 and e.k < 56
    bent = np.minimum(ks, 20) / 20.0 + np.where(ks == 2, 0.5, 0.0)  # Kneedle answers k = 2 here
    b = choose_knee(ks, bent, n=64)
    assert b.kneedle == 2 and not b.fallback and "above the chord" in b.why and 18 <= b.k <= 22
    step = np.where(ks >= 3, 1.0, 0.0)  # everything at the first k: a knee at 2 the curve supports
    low = choose_knee(ks, step, n=64, bounds=KneeBounds(min_keep=0.25))
    assert low.k == 16 and low.bound == "min_keep" and "min_keep" in low.why
    high = choose_knee(ks, np.minimum(ks, 40) / 40.0, n=64, bounds=KneeBounds(max_keep=0.5))
    assert high.k == 32 and high.bound == "max_keep"
    assert choose_knee(ks, np.ones(ks.size), n=64).fallback  # flat


def test_isotonic_fit() -> None:
    np.testing.assert_allclose(isotonic_increasing([1, 3, 2, 4, 0, 5]), [1, 2.25, 2.25, 2.25, 2.25, 5])
    np.testing.assert_allclose(isotonic_increasing([0, 1, 2]), [0, 1, 2])


def test_robust_rule_takes_the_smallest_k_within_noise_of_the_best_bend() -> None:
    """Two bends the noisy curve cannot tell apart: the smaller count (the one-standard-error rule)."""
    ks = np.arange(2, 33)
    # bends at 10 and 16 whose heights above the chord differ by less than the curve's noise
    base = np.minimum(ks, 10) / 10.0 * 0.6 + np.clip(ks - 10, 0, 6) / 6.0 * 0.16 + np.clip(ks - 16, 0, None) * 0.002
    wiggle = np.where(ks % 2 == 0, 0.01, -0.01)
    d = choose_knee(ks, base + wiggle, n=32, bounds=KneeBounds(min_keep=0.05))
    clean = choose_knee(ks, base, n=32, bounds=KneeBounds(min_keep=0.05))
    assert clean.k == 16 and d.k == 10 and "noise level" in d.why


def test_robust_rule_is_stable_under_curve_noise() -> None:
    """The same curve with independent noise draws: the knee moves by at most N/8."""
    ks, ys = _exp_curve(6)
    rng = np.random.default_rng(1)
    knees = [choose_knee(ks, ys + rng.normal(scale=0.01, size=ys.size), n=64).k for _ in range(10)]
    assert max(knees) - min(knees) <= 8, knees


def test_standard_error_of_mss_widens_the_noise_level() -> None:
    """A smooth two-bend curve (no scatter): the larger bend wins unless MSS's own standard error says the
    two cannot be told apart; then the smaller count. The paper rule ignores the errors."""
    ks = np.arange(2, 33)
    base = np.minimum(ks, 10) / 10.0 * 0.6 + np.clip(ks - 10, 0, 6) / 6.0 * 0.16 + np.clip(ks - 16, 0, None) * 0.002
    bounds = KneeBounds(min_keep=0.05)
    assert choose_knee(ks, base, n=32, bounds=bounds, se=np.zeros(ks.size)).k == 16
    tiny = choose_knee(ks, base, n=32, bounds=bounds, se=np.full(ks.size, 1e-4))
    assert tiny.k == 16 and tiny.noise == pytest.approx(1e-4 / (base[-4] - base[0]), rel=0.05)
    wide = choose_knee(ks, base, n=32, bounds=bounds, se=np.full(ks.size, 0.03))
    assert wide.k == 10 and "standard error" in wide.why and wide.noise is not None and wide.noise > 0.03
    assert wide.to_json()["noise"] == pytest.approx(wide.noise, abs=1e-6)
    ref = choose_knee(ks, base, n=32, rule="paper")
    assert choose_knee(ks, base, n=32, rule="paper", se=np.full(ks.size, 0.03)).k == ref.k
    with pytest.raises(SeparabilityError, match="standard errors"):
        choose_knee(ks, base, n=32, se=-np.ones(ks.size))
    with pytest.raises(SeparabilityError, match="differ in length"):
        choose_knee(ks, base, n=32, se=np.ones(3))
