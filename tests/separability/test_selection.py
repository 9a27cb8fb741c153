"""select_channels: planted clusters, rounding, keep rules, grids and the documented degenerate cases."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from cosep_deploy.errors import SeparabilityError
from cosep_deploy.separability import coarse_k_grid, select_channels
from cosep_deploy.separability import knee as knee_mod

Planted = tuple[np.ndarray, np.ndarray, np.ndarray]


def planted(clusters: int, per: int, seed: int, spread: float = 0.05) -> Planted:
    """Distances of ``clusters`` separated groups of ``per`` near-duplicate channels, norms, group ids."""
    rng = np.random.default_rng(seed)
    group = rng.permutation(np.repeat(np.arange(clusters), per))  # interleave the groups' channel indices
    x = rng.normal(size=(clusters, 16))[group] * 10 + rng.normal(size=(group.size, 16)) * spread
    return cdist(x, x), rng.uniform(1, 10, size=group.size), group


def test_planted_clusters_keep_one_max_norm_channel_each() -> None:
    d, norms, group = planted(5, 2, seed=0)
    sel = select_channels(d, norms)
    assert sel.k == 5 and sel.n_kept == 5 and not sel.fallback and sel.grid == "all"
    assert sorted(group[list(sel.kept)]) == [0, 1, 2, 3, 4]
    for g in range(5):
        members = np.flatnonzero(group == g)
        assert members[np.argmax(norms[members])] in sel.kept
    assert [k for k, _ in sel.curve] == list(range(2, 11))  # the authors' grid: k in [2, N]
    mss = dict(sel.curve)
    assert mss[5] > 0.95 > mss[4]  # the MSS curve jumps where every planted group has its own medoid


def test_keep_medoid_rule() -> None:
    d, norms, group = planted(5, 2, seed=1)
    sel = select_channels(d, norms, keep="medoid")
    assert sel.kept == sel.medoids
    assert sorted(group[list(sel.kept)]) == [0, 1, 2, 3, 4]


def test_round_to_aligns_within_a_quarter_of_k_filling_with_highest_norms() -> None:
    d, norms, _ = planted(8, 3, seed=2)  # knee k = 8 of 24
    base = select_channels(d, norms)
    assert base.k == 8 and base.n_kept == 8
    by_6 = select_channels(d, norms, round_to=6)  # nearest multiple 6: removes 2 <= 8 / 4
    assert by_6.n_kept == 6 and set(by_6.kept) <= set(base.kept)
    assert by_6.alignment is not None and by_6.alignment.skipped is None
    dropped = set(base.kept) - set(by_6.kept)
    assert max(norms[list(dropped)]) <= min(norms[list(by_6.kept)])  # the lowest-norm picks go
    by_10 = select_channels(d, norms, round_to=10)  # nearest multiple 10: adds 2 <= 8 / 4
    extra = sorted(set(range(24)) - set(base.kept), key=lambda i: -norms[i])[:2]
    assert set(by_10.kept) == set(base.kept) | set(extra)
    by_16 = select_channels(d, norms, round_to=16)  # 16 would add 8 > 8 / 4: alignment skipped, k kept
    assert by_16.kept == base.kept and by_16.alignment is not None and by_16.alignment.skipped


def test_auto_grid_refines_and_agrees_with_paper_mode() -> None:
    d, norms, _ = planted(30, 3, seed=3, spread=2.0)  # N = 90 > 64: coarse grid + refinement
    seen: list[tuple[int, int | None]] = []
    auto = select_channels(d, norms, progress=lambda done, total: seen.append((done, total)))
    full = select_channels(d, norms, k_grid="all")
    assert auto.grid == "coarse+refine" and full.grid == "all"
    assert len(full.curve) == 89 and len(auto.curve) < len(full.curve)
    assert abs(auto.k - full.k) <= 2
    assert len(auto.curve) > len(coarse_k_grid(90))  # the bracket around the knee was refined
    assert [s for s, _ in seen] == list(range(1, len(auto.curve) + 1))


def test_coarse_grid_shape() -> None:
    grid = coarse_k_grid(2048)
    assert grid[0] == 2 and grid[-1] == 2048 and 20 <= len(grid) <= 32 and grid == sorted(set(grid))
    assert coarse_k_grid(10) == list(range(2, 11))


def test_deterministic() -> None:
    d, norms, _ = planted(20, 4, seed=4, spread=1.0)
    a, b = select_channels(d, norms, seed=3), select_channels(d, norms, seed=3)
    assert a == b


@pytest.mark.parametrize("n", [0, 1, 2])
def test_fewer_than_three_channels_keep_all(n: int) -> None:
    sel = select_channels(np.ones((n, n)) - np.eye(n), np.ones(n))
    assert sel.kept == tuple(range(n)) and sel.n_kept == n and sel.fallback and sel.grid == "none"
    assert sel.note is not None and "too few" in sel.note


def test_all_zero_distances_keep_one_cluster() -> None:
    norms = np.array([1.0, 5.0, 3.0, 5.0, 2.0, 0.5])
    sel = select_channels(np.zeros((6, 6)), norms)
    assert sel.k == 1 and sel.kept == (1,) and sel.fallback and sel.note is not None
    aligned = select_channels(np.zeros((6, 6)), norms, round_to=4)  # 4 would add 3 > 1 / 4 channels
    assert aligned.kept == (1,) and aligned.alignment is not None and aligned.alignment.skipped


def test_paper_rule_without_knee_falls_back_to_max_mss(monkeypatch: pytest.MonkeyPatch) -> None:
    d, norms, _ = planted(4, 3, seed=5)
    monkeypatch.setattr(knee_mod, "find_knee", lambda ks, ys: None)
    sel = select_channels(d, norms, knee_rule="paper")
    best = max(sel.curve, key=lambda ks: ks[1])
    assert sel.fallback and sel.k == best[0] and sel.note is not None and "no knee" in sel.note


def test_to_json_round_trips() -> None:
    d, norms, _ = planted(5, 2, seed=6)
    data = json.loads(json.dumps(select_channels(d, norms, round_to=3).to_json()))
    assert data["k"] == 5 and data["n_kept"] == 6 and len(data["kept"]) == 6 and data["grid"] == "all"
    assert data["curve"][0][0] == 2 and {"fallback", "note", "keep", "round_to", "knee", "alignment"} <= set(data)
    assert data["knee"]["rule"] == "robust" and data["alignment"] == {
        "round_to": 3,
        "k": 5,
        "aligned": 6,
        "skipped": None,
    }


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"k_grid": "some"}, "k_grid"),
        ({"keep": "min_l1"}, "keep"),
        ({"round_to": 0}, "round_to"),
        ({"filter_norms": np.ones(3)}, "filter_norms"),
        ({"d": np.full((4, 4), np.nan)}, "NaN"),
    ],
)
def test_bad_input_raises(kw: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"d": np.ones((4, 4)) - np.eye(4), "filter_norms": np.ones(4)}
    args.update(kw)
    with pytest.raises(SeparabilityError, match=match):
        select_channels(**args)  # type: ignore[arg-type]
