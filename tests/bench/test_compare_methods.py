"""The method comparison's paired differences and its re-rendering from saved rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from bench.compare_methods import PAIRS, main, paired_differences


def _rows() -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(5):
        for method in ("cosep_budget", "l1", "cosep_paper", "uniform"):
            if method == "l1" and seed == 4:
                continue  # a seed one method did not finish: no pair for it
            rows.append(
                {
                    "model": "resnet20",
                    "seed": seed,
                    "method": method,
                    "target_ratio": 2.0,
                    "macs_ratio": 2.0,
                    "top1_before_ft": 0.1,
                    "top1_after_ft": float(rng.uniform(0.7, 0.9)),
                    "dense_top1": 0.9,
                    "kept": {},
                }
            )
    rows.append({**rows[0], "method": "cosep_knee", "target_ratio": None})  # own cost: never paired
    return rows


def test_paired_differences_match_a_t_interval_over_shared_seeds() -> None:
    rows = _rows()
    pairs = {(p["a"], p["b"]): p for p in paired_differences(rows)}
    assert set(pairs) == {
        ("cosep_budget", "l1"),
        ("cosep_paper", "cosep_budget"),
        ("cosep_paper", "l1"),
        ("uniform", "cosep_budget"),
    } and set(pairs) <= set(PAIRS)
    top1 = {(r["method"], r["seed"]): r["top1_after_ft"] for r in rows if r["target_ratio"]}
    diffs = np.array([top1["cosep_budget", s] - top1["l1", s] for s in range(4)])
    low, high = stats.t.interval(0.95, len(diffs) - 1, loc=diffs.mean(), scale=stats.sem(diffs))
    got = pairs["cosep_budget", "l1"]
    assert got["n"] == 4 and got["mean"] == pytest.approx(diffs.mean())
    assert got["ci95"] == pytest.approx([low, high], rel=1e-3)
    assert pairs["cosep_paper", "cosep_budget"]["n"] == 5


def test_rerender_derives_tables_from_the_saved_rows(tmp_path: Path) -> None:
    out = tmp_path / "methods.json"
    saved = {
        "command": "python bench/compare_methods.py ...",
        "data": "digits",
        "validation_images": 359,
        "complete": True,
        "rows": _rows(),
        "summary": "stale",
    }
    out.write_text(json.dumps(saved))
    assert main(["--out", str(out), "--rerender"]) == 0
    result = json.loads(out.read_text())
    assert result["rows"] == saved["rows"] and result["summary"] != "stale"
    assert {(p["a"], p["b"]) for p in result["paired_after_ft"]} >= {("cosep_budget", "l1")}
    md = out.with_suffix(".md").read_text()
    assert "| resnet20 | 2x | cosep_budget | " in md and "cosep_budget - l1" in md
    assert out.with_suffix(".png").stat().st_size > 0
