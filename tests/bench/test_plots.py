"""Every report plot gives valid, deterministic PNG bytes, including on degenerate inputs."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

from cosep_deploy.bench.plots import (
    DPI,
    plot_accuracy_vs_macs,
    plot_kept_channels,
    plot_latency_distributions,
    plot_layer_times,
    plot_mss_curves,
    plot_speedup,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _group(root: str, size: int, kept: int, k: int, *, fallback: bool = False, curve: bool = True) -> dict[str, Any]:
    points = [[j, 0.2 + 0.3 * (1 - np.exp(-j / 4))] for j in range(2, size)] if curve else []
    return {
        "root": root,
        "size": size,
        "n_kept": kept,
        "k": k,
        "curve": points,
        "fallback": fallback,
        "grid": "all" if curve else "none",
        "count_rule": "mss_knee",
        "members": [{"layer": root}],
        "note": None if curve else f"{size} channel(s): too few to cluster; all kept",
    }


def _plan(groups: list[dict[str, Any]], method: str = "cosep") -> dict[str, Any]:
    return {
        "method": method,
        "groups": groups,
        "cost_before": {"macs": 2_000_000, "params": 100_000},
        "cost_after": {"macs": 1_000_000, "params": 50_000},
    }


def _bench(batches: tuple[int, ...]) -> dict[str, Any]:
    def results(scale: float) -> dict[str, Any]:
        out = {}
        for b in batches:
            times = [scale * b * (1.0 + 0.01 * (i % 5)) for i in range(8)] + [scale * b * 20]  # one hiccup
            out[str(b)] = {"median_ms": float(np.median(times)), "times_ms": times, "iterations": len(times)}
        return out

    speed = {str(b): {"speedup": 1.6, "ci_low": 1.5, "ci_high": 1.7, "level": 0.95, "macs_ratio": 2.0} for b in batches}
    return {
        "baseline": "dense",
        "engines": {"dense": {"results": results(1.0)}, "pruned": {"results": results(0.6)}},
        "speedups": {"pruned": speed},
        "settings": {"backend": "onnxruntime", "precision": "fp32"},
        "config": {"iterations": 9},
    }


POINTS = [
    {"method": "dense", "macs": 2_000_000, "top1": 0.97, "stage": "dense"},
    {"method": "cosep", "macs": 1_000_000, "top1": 0.40, "stage": "pruned"},
    {"method": "cosep", "macs": 1_000_000, "top1": 0.95, "stage": "finetuned"},
]


def _layers(n: int) -> dict[str, Any]:
    """A layers.json with ``n`` paired layers, one only in dense and one only in pruned (long TensorRT-style
    names included)."""
    rows = [
        {
            "name": f"/layer{i}/conv/Conv + /layer{i}/bn/BatchNormalization + /layer{i}/relu/Relu",
            "kind": "Conv",
            "dense_ms": 0.1 * (i + 1),
            "pruned_ms": 0.05 * (i + 1),
            "speedup": 2.0,
            "dense_share": 0.1,
        }
        for i in range(n)
    ]
    rows.append(
        {"name": "Reformatting CopyNode", "kind": "Layout", "dense_ms": 0.3, "pruned_ms": None, "speedup": None}
    )
    rows.append(
        {"name": "ReorderOutput_token_8", "kind": "Layout", "dense_ms": None, "pruned_ms": 0.2, "speedup": None}
    )
    return {"source": "onnxruntime", "settings": {"backend": "onnxruntime", "batch": 1}, "rows": rows}


def _image(png: bytes) -> Image.Image:
    assert png[:8] == PNG_SIGNATURE
    img = Image.open(io.BytesIO(png))
    img.load()
    assert img.format == "PNG" and img.width >= 200 and img.height >= 150
    assert float(np.asarray(img.convert("L")).std()) > 1.0  # something was drawn
    return img


CASES = {
    "kept": lambda: plot_kept_channels(_plan([_group("a.conv", 16, 8, 6), _group("b.conv", 32, 16, 12)])),
    "mss": lambda: plot_mss_curves(_plan([_group("a.conv", 16, 8, 6), _group("b.conv", 2, 2, 2, curve=False)])),
    "latency": lambda: plot_latency_distributions(_bench((1, 8))),
    "speedup": lambda: plot_speedup(_bench((1, 8))),
    "accuracy": lambda: plot_accuracy_vs_macs(POINTS),
    "layers": lambda: plot_layer_times(_layers(6)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_plot_is_a_deterministic_png(name: str) -> None:
    first, second = CASES[name](), CASES[name]()
    _image(first)
    assert first == second


def test_size_follows_the_data_only() -> None:
    img = _image(plot_speedup(_bench((1,))))
    assert (img.width, img.height) == (6 * DPI, round(3.6 * DPI))


def test_mss_curves_mark_fallbacks_and_empty_curves() -> None:
    groups = [
        _group("ok.conv", 16, 8, 6),
        _group("noknee.conv", 16, 16, 15, fallback=True),
        _group("tiny.conv", 2, 2, 2, fallback=True, curve=False),
    ]
    _image(plot_mss_curves(_plan(groups)))
    baseline = _plan([_group("a.conv", 16, 8, 8, curve=False)], method="l1")
    _image(plot_mss_curves(baseline))  # a baseline plan has no curves at all: a message, not an error


def test_mss_curves_limit_the_panels() -> None:
    many = _plan([_group(f"layer{i}.conv", 8, 4, 3) for i in range(20)])
    assert Image.open(io.BytesIO(plot_mss_curves(many, max_groups=4))).height < _image(plot_mss_curves(many)).height


def test_one_batch_size_and_a_single_engine() -> None:
    one = _bench((1,))
    _image(plot_latency_distributions(one))
    _image(plot_speedup(one))
    one["speedups"] = {}
    del one["engines"]["pruned"]
    _image(plot_latency_distributions(one))
    _image(plot_speedup(one))


def test_edge_inputs_give_a_message_figure() -> None:
    _image(plot_kept_channels(_plan([])))
    _image(plot_accuracy_vs_macs([]))
    _image(plot_accuracy_vs_macs([{**POINTS[0], "top1": None}]))  # a skipped measurement is left out
    _image(plot_latency_distributions({"engines": {}}))


def test_accuracy_plot_with_baselines_differs_from_without() -> None:
    more = [*POINTS, {"method": "l1", "macs": 1_000_000, "top1": 0.93, "stage": "finetuned"}]
    assert plot_accuracy_vs_macs(more) != plot_accuracy_vs_macs(POINTS)


def test_user_style_does_not_change_the_bytes() -> None:
    import matplotlib

    reference = plot_speedup(_bench((1, 8)))
    with matplotlib.rc_context({"lines.linewidth": 6.0, "axes.facecolor": "black", "font.size": 20}):
        assert plot_speedup(_bench((1, 8))) == reference


def test_layer_times_show_the_top_layers_only() -> None:
    few, many = _image(plot_layer_times(_layers(3))), _image(plot_layer_times(_layers(40)))
    assert many.height > few.height
    assert _image(plot_layer_times(_layers(40), top=5)).height < many.height  # top 5 of 42 rows
    assert _image(plot_layer_times(_layers(40), top=15)).height == many.height  # 15 by default
    assert plot_layer_times(_layers(40), top=5) != plot_layer_times(_layers(40), top=6)
    _image(plot_layer_times({"rows": []}))  # an empty profile gives a message, not an error
