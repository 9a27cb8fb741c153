"""The count allocator: greedy against exhaustive search on small coupled problems; the closed loop's
correction on a known time model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

from cosep_deploy.errors import PruneError
from cosep_deploy.latency.allocate import CostTerm, GroupCurve, allocate_counts, allocate_exhaustive, total_cost
from cosep_deploy.latency.loop import Calibration, closed_loop


def _problem(seed: int, n_groups: int = 4) -> tuple[list[GroupCurve], list[CostTerm]]:
    """Chain of groups; layer i costs in_i * out_i (a convolution between neighbouring groups)."""
    rng = np.random.default_rng(seed)
    curves, sizes = [], []
    for g in range(n_groups):
        size = int(rng.choice([32, 48, 64]))
        counts = tuple(range(8, size + 1, 8))
        gains = np.sort(rng.random(len(counts)))[::-1]  # concave: early channels add most
        values = np.cumsum(gains) / gains.sum() * size
        curves.append(GroupCurve(f"g{g}", counts, tuple(float(v) for v in values)))
        sizes.append(size)
    terms = [CostTerm("stem", ("g0",), lambda c: 3.0 * c["g0"])]
    for g in range(1, n_groups):
        a, b, k = f"g{g - 1}", f"g{g}", float(rng.uniform(0.5, 2))

        def fn(c: Mapping[str, int], a: str = a, b: str = b, k: float = k) -> float:
            return k * c[a] * c[b] / 8 + 2.0  # bilinear in the two widths, plus a constant

        terms.append(CostTerm(f"layer{g}", (a, b), fn))
    terms.append(CostTerm("head", (f"g{n_groups - 1}",), lambda c, r=f"g{n_groups - 1}": 0.5 * c[r]))
    return curves, terms


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("fraction", [0.35, 0.6, 0.85])
def test_greedy_is_feasible_and_close_to_exhaustive(seed: int, fraction: float) -> None:
    curves, terms = _problem(seed)
    full = total_cost(terms, {c.root: c.counts[-1] for c in curves})
    floor = total_cost(terms, {c.root: c.counts[0] for c in curves})
    budget = floor + fraction * (full - floor)
    best = allocate_exhaustive(curves, terms, budget)
    got = allocate_counts(curves, terms, budget)
    assert got.feasible and best.feasible
    assert got.cost <= budget + 1e-9
    assert abs(got.cost - total_cost(terms, got.counts)) < 1e-9
    assert all(c.counts[0] <= got.counts[c.root] <= c.counts[-1] and got.counts[c.root] % 8 == 0 for c in curves)
    assert got.value >= 0.97 * best.value  # measured on these 36 cases: greedy worst 0.988 of the optimum


def test_unreachable_budget_is_reported_infeasible() -> None:
    curves, terms = _problem(0)
    floor = total_cost(terms, {c.root: c.counts[0] for c in curves})
    got = allocate_counts(curves, terms, floor * 0.9)
    assert not got.feasible
    assert got.counts == {c.root: c.counts[0] for c in curves}
    assert not allocate_exhaustive(curves, terms, floor * 0.9).feasible


def test_a_step_that_saves_no_time_is_looked_past() -> None:
    # a measured table is not monotone: 32 -> 24 channels costs more here (a slower kernel), 24 -> 16 saves;
    # the allocation must still reach the budget by jumping to 16, not stop above it
    times = {8: 2.0, 16: 4.0, 24: 9.0, 32: 8.0}
    curves = [GroupCurve("g", (8, 16, 24, 32), (0.2, 0.6, 0.9, 1.0))]
    terms = [CostTerm("conv", ("g",), lambda c: times[c["g"]])]
    got = allocate_counts(curves, terms, budget=4.5)
    assert got.feasible and got.counts == {"g": 16} and got.cost == pytest.approx(4.0)


def test_neighbour_coupling_is_priced_at_the_neighbours_counts() -> None:
    """Two groups, one layer coupling them (cost a*b): lowering a saves more when b is wide. The greedy must
    price each step at the other group's current count, which an additive per-group cost cannot."""
    curves = [GroupCurve("a", (8, 16, 32), (0.0, 20.0, 32.0)), GroupCurve("b", (8, 16, 32), (0.0, 20.0, 32.0))]
    terms = [CostTerm("ab", ("a", "b"), lambda c: float(c["a"] * c["b"]))]
    for budget in (300.0, 520.0, 1000.0):
        assert allocate_counts(curves, terms, budget).value == pytest.approx(
            allocate_exhaustive(curves, terms, budget).value
        )


def test_calibration_through_the_dense_point() -> None:
    # true relative time t(S) = 0.4 + 0.06 S with S_full = 10: dense 1.0; measured ratios at S = 5 and 2
    cal = Calibration.through_dense([(5.0, 0.7), (2.0, 0.52)], 10.0, 20.0)
    assert cal.ms(10.0) == pytest.approx(20.0)  # passes through the dense model's measured time
    assert cal.a == pytest.approx(8.0) and cal.b == pytest.approx(1.2)  # 20 x (0.4 + 0.06 S)
    prop = Calibration.through_dense([(5.0, 0.4)], 10.0, 20.0)  # faster than proportional: a negative intercept
    assert prop.ms(5.0) == pytest.approx(8.0)
    flat = Calibration.through_dense([(5.0, 1.1)], 10.0, 20.0)  # pruning made it slower: no positive slope
    assert flat.a == 0 and flat.b == pytest.approx(2.0)


def test_closed_loop_corrects_a_wrong_table() -> None:
    """The table's sum predicts proportional time; the 'device' has a fixed 30% overhead that does not
    shrink. Round 1 overshoots the request's time; the correction brings a later round within 3%."""
    curves, terms = _problem(3, n_groups=5)
    s_full = total_cost(terms, {c.root: c.counts[-1] for c in curves})

    def true_ms(counts: Mapping[str, int]) -> float:
        return 0.3 * s_full + 0.7 * total_cost(terms, counts)

    def measure(counts: Mapping[str, int]) -> dict[str, float]:
        dense, pruned = true_ms({c.root: c.counts[-1] for c in curves}), true_ms(counts)
        return {"speedup": dense / pruned, "ci_low": 0, "ci_high": 0, "dense_ms": dense, "pruned_ms": pruned}

    best, rounds = closed_loop(
        curves, terms, dense_ms=s_full, speedup=1.5, budget_ms=None, rounds=3, tolerance=0.03, measure=measure
    )
    assert rounds[0].measured is not None and rounds[0].measured["speedup"] < 1.5 * 0.97  # the table was wrong
    assert 2 <= len(rounds) <= 3
    assert best.measured is not None and abs(best.measured["speedup"] / 1.5 - 1) <= 0.03


def test_closed_loop_refuses_an_unreachable_request() -> None:
    curves, terms = _problem(1)
    s_full = total_cost(terms, {c.root: c.counts[-1] for c in curves})
    with pytest.raises(PruneError, match=r"beyond reach.*predicts \d+\.\d\dx at most"):
        closed_loop(
            curves, terms, dense_ms=s_full, speedup=50.0, budget_ms=None, rounds=1, tolerance=0.03, measure=None
        )


def test_closed_loop_corrects_each_layer_with_its_measured_time() -> None:
    """Every layer runs at its own factor of the table time (0.5x to 2x) in the whole model, plus a fixed
    overhead no layer explains. The measurement reports each layer's time: round 2 predicts every layer at
    its measured time, the residual takes the overhead, so its predicted speed-up is the measured one."""
    curves, terms = _problem(3, n_groups=5)
    factor = {t.name: f for t, f in zip(terms, np.linspace(0.5, 2.0, len(terms)), strict=True)}
    full = {c.root: c.counts[-1] for c in curves}

    def layer_ms(counts: Mapping[str, int]) -> dict[str, float]:
        return {t.name: factor[t.name] * t.fn(counts) for t in terms}

    overhead = 0.2 * sum(layer_ms(full).values())

    def measure(counts: Mapping[str, int]) -> dict[str, Any]:
        dense, pruned = overhead + sum(layer_ms(full).values()), overhead + sum(layer_ms(counts).values())
        return {
            "speedup": dense / pruned,
            "ci_low": 0,
            "ci_high": 0,
            "dense_ms": dense,
            "pruned_ms": pruned,
            "layer_ms": layer_ms(counts),
        }

    best, rounds = closed_loop(
        curves,
        terms,
        dense_ms=measure(full)["dense_ms"],
        speedup=1.6,
        budget_ms=None,
        rounds=3,
        tolerance=0.03,
        measure=measure,
    )
    first = rounds[0]
    assert first.correction["layers"] == 0 and first.correction["residual_ms"] == 0.0
    assert all(row["table_ms"] == row["predicted_ms"] for row in first.layers.values())
    assert all(row["measured_ms"] is not None for row in first.layers.values())
    assert first.measured is not None and "layer_ms" not in first.measured  # rows carry them, not the result
    assert len(rounds) >= 2
    second = rounds[1]
    assert second.correction["layers"] == len(terms) and second.correction["residual_ms"] > 0
    for name, row in second.layers.items():
        assert row["predicted_ms"] == pytest.approx(row["measured_ms"], rel=1e-3, abs=1e-4), name
    assert second.measured is not None
    assert second.predicted_speedup == pytest.approx(second.measured["speedup"], rel=1e-6)  # the model is exact
    assert second.correction["residual_ms"] == pytest.approx(overhead, rel=1e-6)
    assert best.measured is not None and abs(best.measured["speedup"] / 1.6 - 1) <= 0.03
    assert second.to_json(1.6, None)["layers"] == second.layers


def test_layer_correction_keeps_factors_in_bounds_and_unmeasured_layers() -> None:
    from cosep_deploy.latency.loop import RATIO_BOUNDS, LayerCorrection

    terms = [CostTerm("a", ("g",), lambda c: 1.0 * c["g"]), CostTerm("b", ("g",), lambda c: 2.0)]
    corr = LayerCorrection().refit(terms, {"g": 4}, {"a": 400.0})
    assert corr.ratios == {"a": RATIO_BOUNDS[1]}  # 100x is noise, not a layer: clamped
    again = corr.refit(terms, {"g": 4}, {"b": 3.0})
    assert again.ratios == {"a": RATIO_BOUNDS[1], "b": 1.5}
    a, b = again.apply(terms)
    assert a.fn({"g": 2}) == pytest.approx(2 * RATIO_BOUNDS[1]) and b.fn({"g": 2}) == pytest.approx(3.0)
