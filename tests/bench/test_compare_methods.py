"""The method comparison's paired differences and its re-rendering from saved rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from bench.compare_methods import PAIRS, main, paired_differences, parse_args, summarize, table, verdict_table

REPO = Path(__file__).resolve().parents[2]


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


def test_summary_starts_each_model_with_its_dense_accuracy() -> None:
    rows = _rows()
    for r in rows:
        r["dense_top1"] = 0.9 + 0.01 * r["seed"]
    summary = summarize(rows)
    assert summary[0]["method"] == "dense" and summary[0]["target_ratio"] is None
    assert summary[0]["after_ft"]["mean"] == pytest.approx(0.92) and summary[0]["after_ft"]["n"] == 5
    assert summary[0]["macs_ratio"]["mean"] == 1.0
    assert [e["method"] for e in summary].count("dense") == 1
    assert "| resnet20 | own | dense | 1.00 [1.00, 1.00] | 92.00 [" in "\n".join(table(summary))


def _saved(tmp_path: Path, **protocol: str) -> Path:
    """A result file as a run of ``main`` leaves it, for resnet20 seeds 0..4, with the default protocol;
    written before ``--lr`` and ``--finetune-lr`` existed (so with their defaults)."""
    out = tmp_path / "methods.json"
    args = parse_args(["--out", str(out)])
    saved_args = {k: str(v) for k, v in vars(args).items() if k not in ("lr", "finetune_lr")} | protocol
    out.write_text(json.dumps({"args": saved_args, "seconds": 12.5, "rows": _rows(), "complete": True}))
    return out


def test_resume_runs_nothing_when_every_seed_is_there(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _saved(tmp_path)
    before = out.read_text()
    assert main(["--out", str(out), "--resume", "--seeds", "0", "3"]) == 0
    assert "nothing to run" in capsys.readouterr().out
    assert out.read_text() == before


def test_resume_refuses_rows_measured_with_another_protocol(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _saved(tmp_path, epochs="30", bn_batches="0")
    assert main(["--out", str(out), "--resume", "--seeds", "0", "--lr", "0.01"]) == 2
    assert "lr 0.05 there, 0.01 now" in capsys.readouterr().err
    before = out.read_text()
    assert main(["--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot resume")
    assert "epochs 30 there, 15 now" in err[0] and "bn_batches 0 there, 4 now" in err[0]
    assert out.read_text() == before


def test_verdict_table_has_one_row_per_setting_and_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    full, small = tmp_path / "full.json", tmp_path / "small.json"
    full.write_text(json.dumps({"args": {"train_per_class": "None"}, "rows": _rows()}))
    small.write_text(json.dumps({"args": {"train_per_class": "20"}, "rows": _rows(), "complete": False}))
    assert main(["--verdict", str(full), str(small)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("| model | setting | MACs | seeds | dense | CoSeP budget | cosep_budget - l1 |")
    seeds = len({r["seed"] for r in _rows()})
    assert [line.split(" | ")[1:4] for line in lines[2:]] == [
        ["full data", "2x", str(seeds)],
        ["20 per class", "2x", f"{seeds} (partial)"],
    ]
    # uniform - cosep_budget excludes 0 in these rows: bold for a finished run, never for one still adding seeds
    assert lines[2].split(" | ")[-1].startswith("**") and "**" not in lines[3]
    expected = paired_differences(_rows())[0]
    assert (expected["a"], expected["b"]) == ("cosep_budget", "l1")
    assert (
        lines[2].split(" | ")[6]
        == f"{100 * expected['mean']:.1f} [{100 * expected['ci95'][0]:.1f}, {100 * expected['ci95'][1]:.1f}]"
    )


def test_readme_verdict_table_is_the_committed_results() -> None:
    """The README's verdict is regenerated from the result files, never edited by hand or left stale."""
    files = sorted((REPO / "bench" / "results").glob("methods_digits32_*.json"))
    assert files
    expected = verdict_table([json.loads(p.read_text()) for p in files])
    readme = [line.strip() for line in (REPO / "README.md").read_text().splitlines()]
    start = readme.index(expected[0])
    assert readme[start : start + len(expected)] == expected
    assert not readme[start + len(expected)].startswith("|")


# A whole (model, seed) small enough for a test: ResNet-20 on 8x8 digits, 10 images per class, one epoch each.
_TINY = [
    "--models", "resnet20", "--data", "digits:size=8", "--train-per-class", "10", "--seeds", "0",
    "--epochs", "1", "--finetune-epochs", "1", "--ratios", "2", "--methods", "l1", "--images-per-class", "10",
]  # fmt: skip


def _measured(out: Path) -> list[tuple[Any, ...]]:
    rows = json.loads(out.read_text())["rows"]
    return [(r["method"], r["target_ratio"], r["kept"], r["top1_before_ft"], r["top1_after_ft"]) for r in rows]


def test_a_seed_stopped_part_way_resumes_to_the_rows_of_one_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    whole = tmp_path / "whole.json"
    assert main([*_TINY, "--out", str(whole)]) == 0
    assert not (tmp_path / "whole.partial").exists()  # gone once the seed is in --out
    capsys.readouterr()

    out = tmp_path / "split.json"
    partial = tmp_path / "split.partial" / "resnet20_seed0"
    assert main([*_TINY, "--out", str(out), "--time-limit", "0"]) == 0  # stops once the dense model is trained
    assert "part-done" in capsys.readouterr().out and not out.exists()
    assert json.loads((partial / "rows.json").read_text())["rows"] == []
    assert main([*_TINY, "--out", str(out), "--time-limit", "0", "--resume"]) == 0  # one row more, no retraining
    said = capsys.readouterr().out
    assert "resuming from" in said and said.count("before FT") == 1
    assert len(json.loads((partial / "rows.json").read_text())["rows"]) == 1
    assert main([*_TINY, "--out", str(out), "--resume"]) == 0
    said = capsys.readouterr().out
    assert "(1 rows done)" in said
    assert _measured(out) == _measured(whole) and len(_measured(out)) == 5
    assert json.loads(out.read_text())["complete"] is True
    assert not partial.parent.exists()


def test_a_part_done_seed_of_another_protocol_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.json"
    assert main([*_TINY, "--out", str(out), "--time-limit", "0"]) == 0
    capsys.readouterr()
    partial = tmp_path / "m.partial" / "resnet20_seed0"
    saved = (partial / "rows.json").read_text()
    assert main([*_TINY, "--out", str(out), "--resume", "--finetune-lr", "0.1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "another protocol" in err[0] and str(partial) in err[0]
    assert (partial / "rows.json").read_text() == saved and not out.exists()
    (partial / "dense.safetensors").write_bytes(b"not a tensor file")
    assert main([*_TINY, "--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: cannot resume from {partial}")
