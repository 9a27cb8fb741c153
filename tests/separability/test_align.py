"""Channel alignment: nearest multiple, at most a quarter of k, skipped for groups too small for it."""

from __future__ import annotations

import numpy as np
import pytest

from cosep_deploy.errors import SeparabilityError
from cosep_deploy.separability import align_count, align_kept


@pytest.mark.parametrize(
    ("k", "n", "r", "aligned", "skipped"),
    [
        (13, 64, 1, 13, False),  # round_to 1: exactly k
        (30, 64, 8, 32, False),  # nearest multiple up
        (33, 64, 8, 32, False),  # nearest multiple down
        (20, 64, 8, 24, False),  # tie: upward (adds 4 <= 20 / 4)
        (12, 64, 8, 12, True),  # 8 or 16 would move 4 > 12 / 4
        (2, 64, 16, 2, True),  # 16 would add 14 channels nobody chose
        (5, 6, 8, 5, True),  # group too small for multiples of 8
        (6, 6, 8, 6, False),  # the whole group needs no alignment
        (40, 64, 32, 32, False),  # removes 8 <= 10
    ],
)
def test_align_count(k: int, n: int, r: int, aligned: int, skipped: bool) -> None:
    got = align_count(k, n, r)
    assert got.aligned == aligned and (got.skipped is not None) == skipped
    assert (got.aligned - k) / got.aligned <= 0.25 and abs(got.aligned - k) <= k // 4


def test_every_count_stays_within_a_quarter() -> None:
    for r in (1, 8, 16, 32):
        for n in range(1, 130):
            for k in range(1, n + 1):
                a = align_count(k, n, r)
                assert abs(a.aligned - k) <= k // 4 and 1 <= a.aligned <= n
                assert a.skipped is not None or a.aligned % r == 0 or a.aligned == n


def test_align_kept_fills_and_trims_by_order() -> None:
    order = np.array([5, 3, 0, 1, 4, 2])
    assert align_kept([1, 2], 4, order) == (1, 2, 3, 5)
    assert align_kept([0, 1, 2, 4], 2, order) == (0, 1)
    with pytest.raises(SeparabilityError):
        align_count(0, 4, 8)
