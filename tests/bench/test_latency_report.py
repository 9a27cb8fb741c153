"""The report's latency-target section: rounds (requested / predicted / measured) and the per-layer plot, from
plan records made by the real closed loop on a known time model."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import pytest
from PIL import Image

from cosep_deploy.bench.html_report import _figure, _table
from cosep_deploy.bench.latency_report import (
    ROUND_COLUMNS,
    latency_html_section,
    latency_md_section,
    layer_errors,
    plot_predicted_vs_measured,
    round_rows,
)
from cosep_deploy.latency.allocate import CostTerm, GroupCurve
from cosep_deploy.latency.loop import closed_loop


def _plan(*, speedup: float | None, budget_ms: float | None, measured: bool = True) -> dict[str, Any]:
    """A plan's ``config["latency"]`` from the closed loop: two groups, three layers, each layer running at
    its own factor of the table's time in the 'device', plus an overhead no layer explains."""
    curves = [GroupCurve(g, (8, 16, 24, 32), (1.0, 2.0, 2.6, 3.0)) for g in ("a", "b")]
    terms = [
        CostTerm("stem", ("a",), lambda c: 0.1 * c["a"]),
        CostTerm("mid", ("a", "b"), lambda c: 0.01 * c["a"] * c["b"]),
        CostTerm("head", ("b",), lambda c: 0.05 * c["b"]),
    ]
    factor = {"stem": 1.3, "mid": 0.8, "head": 2.0}
    full = {"a": 32, "b": 32}

    def device(counts: Mapping[str, int]) -> dict[str, float]:
        return {t.name: factor[t.name] * t.fn(counts) for t in terms}

    def measure(counts: Mapping[str, int]) -> dict[str, Any]:
        dense, pruned = 2.0 + sum(device(full).values()), 2.0 + sum(device(counts).values())
        s = dense / pruned
        return {
            "speedup": s,
            "ci_low": s * 0.98,
            "ci_high": s * 1.02,
            "dense_ms": dense,
            "pruned_ms": pruned,
            "layer_ms": device(counts),
        }

    dense_ms = measure(full)["dense_ms"]
    best, rounds = closed_loop(
        curves,
        terms,
        dense_ms=dense_ms,
        speedup=speedup,
        budget_ms=budget_ms,
        rounds=3,
        tolerance=0.0,  # every round runs: the section shows three
        measure=measure if measured else None,
    )
    latency = {
        "request": {"speedup": speedup, "budget_ms": budget_ms, "target": "cpu-onnxruntime", "batch": 1, "threads": 2},
        "table": {"source": "measured", "key": {"backend": "onnxruntime", "runtime_version": "1.0"}},
        "rounds": [r.to_json(speedup, budget_ms) for r in rounds],
        "chosen_round": rounds.index(best) + 1,
    }
    return {"method": "cosep", "config": {"latency": latency}, "groups": []}


def test_rounds_show_requested_predicted_and_measured_and_the_correction() -> None:
    plan = _plan(speedup=1.8, budget_ms=None)
    lat = plan["config"]["latency"]
    rows = round_rows(lat)
    assert len(rows) == len(lat["rounds"]) == 3 and all(len(r) == len(ROUND_COLUMNS) for r in rows)
    first, second = rows[0], rows[1]
    assert first[1] == "1.800x" and first[2] == f"{lat['rounds'][0]['predicted_speedup']:.3f}x"
    assert first[3] == f"{lat['rounds'][0]['measured_speedup']:.3f}x"
    assert first[6] == "0" and second[6] == "3"  # round 2 is allocated on three corrected layers
    assert [r[8] for r in rows].count("yes") == 1 and rows[lat["chosen_round"] - 1][8] == "yes"
    # round 1 predicts the raw table (each layer off by its factor); round 2 predicts every layer exactly
    assert sorted(round(e, 3) for e in layer_errors(lat["rounds"][0])) == sorted(
        round(1 / f - 1, 3) for f in (1.3, 0.8, 2.0)
    )
    assert all(abs(e) < 1e-3 for e in layer_errors(lat["rounds"][1]))
    md = "\n".join(latency_md_section(plan))
    assert "## Latency target: requested vs measured" in md and "a 1.8x speed-up" in md
    assert md.count("\n| ") == 1 + 3  # header and one row per round


def test_a_budget_shows_milliseconds() -> None:
    lat = _plan(speedup=None, budget_ms=5.0)["config"]["latency"]
    row = round_rows(lat)[0]
    assert row[1] == "5.000 ms" and row[2].endswith(" ms") and row[3].endswith(" ms")
    assert row[4].startswith("speed-up ")


def test_html_section_has_the_table_and_a_real_plot() -> None:
    plan = _plan(speedup=1.8, budget_ms=None)
    page = "\n".join(latency_html_section(plan, table=_table, figure=_figure))
    assert page.startswith('<section id="latency-target">') and page.endswith("</section>")
    assert page.count("<tr>") == 1 + 3 and 'id="plot-latency-layers"' in page
    png = plot_predicted_vs_measured(plan["config"]["latency"])
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size[0] > 300
    assert plot_predicted_vs_measured(plan["config"]["latency"]) == png  # deterministic


def test_open_loop_and_plain_plans() -> None:
    open_loop = _plan(speedup=1.5, budget_ms=None, measured=False)
    (row,) = round_rows(open_loop["config"]["latency"])
    assert row[3] == "not measured" and row[7] == "-"
    blank = plot_predicted_vs_measured(open_loop["config"]["latency"])
    assert blank != plot_predicted_vs_measured(_plan(speedup=1.5, budget_ms=None)["config"]["latency"])
    plain = {"method": "cosep", "config": {"round_to": 8}, "groups": []}
    assert latency_md_section(plain) == [] and latency_html_section(plain, table=_table, figure=_figure) == []


@pytest.mark.parametrize("speedup", [1.4, 2.2])
def test_the_loop_records_the_per_layer_rows_it_plots(speedup: float) -> None:
    lat = _plan(speedup=speedup, budget_ms=None)["config"]["latency"]
    for r in lat["rounds"]:
        assert set(r["layers"]) == {"stem", "mid", "head"}
        assert all(v["measured_ms"] > 0 and v["predicted_ms"] > 0 for v in r["layers"].values())
