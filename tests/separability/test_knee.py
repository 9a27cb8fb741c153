"""find_knee: kneed's Kneedle with the paper's settings, plus the no-knee cases."""

from __future__ import annotations

import numpy as np
import pytest
from kneed import KneeLocator

from cosep_deploy.errors import SeparabilityError
from cosep_deploy.separability import find_knee


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
