"""Output comparison between any two engines (Polygraphy's comparator), per-precision tolerances.

The reference is normally ONNX Runtime running the fp32 ONNX; the candidate any runner (an fp16/int8
variant, a TensorRT engine). Elementwise closeness uses Polygraphy's ``CompareFunc.simple``; because a
quantized model is judged by what it predicts, not by exact logits, int8 passes on top-1 agreement.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .backends.base import Runner
from .errors import ConfigError, ExportValidationError

__all__ = ["DEFAULT_TOLERANCES", "ComparisonResult", "compare_files", "compare_runners", "runner_for"]

# precision -> (rtol, atol, minimum top-1 agreement); fp16 tolerances around 1e-3..1e-2 are usual for
# engines; int8 logits move by whole quantization steps, so only the decision is compared
DEFAULT_TOLERANCES: dict[str, tuple[float, float, float]] = {
    "fp32": (1e-3, 1e-4, 1.0),
    "fp16": (1e-2, 1e-2, 0.99),
    "int8": (float("inf"), float("inf"), 0.95),
}


@dataclasses.dataclass(frozen=True)
class ComparisonResult:
    reference: str
    candidate: str
    precision: str
    outputs: dict[str, dict[str, float | bool]]  # per output: max/mean abs and rel error, agreement, passed

    @property
    def passed(self) -> bool:
        return all(bool(o["passed"]) for o in self.outputs.values())

    def lines(self) -> list[str]:
        return [
            f"{'PASS' if o['passed'] else 'FAIL'} {name}: max abs {o['max_abs']:.3g}, max rel {o['max_rel']:.3g}, "
            f"mean abs {o['mean_abs']:.3g}, top-1 agreement {100 * float(o['agreement']):.2f}%"
            for name, o in self.outputs.items()
        ]


def compare_runners(
    reference: Runner,
    candidate: Runner,
    feeds: Sequence[dict[str, np.ndarray]],
    *,
    precision: str | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    check: bool = False,
) -> ComparisonResult:
    """Run both (active) runners on ``feeds`` and compare every output with Polygraphy's comparator."""
    from polygraphy.comparator import CompareFunc, IterationResult
    from polygraphy.logger import G_LOGGER

    prec = precision or candidate.info().precision
    if prec not in DEFAULT_TOLERANCES:
        raise ConfigError(f"unknown precision {prec!r}: choose from {sorted(DEFAULT_TOLERANCES)}")
    d_rtol, d_atol, min_agree = DEFAULT_TOLERANCES[prec]
    rtol = d_rtol if rtol is None else rtol
    atol = d_atol if atol is None else atol
    elementwise = np.isfinite(rtol) and np.isfinite(atol)
    compare = CompareFunc.simple(rtol=rtol if elementwise else 1.0, atol=atol if elementwise else 1.0)
    stats: dict[str, dict[str, list[float]]] = {}
    ok: dict[str, bool] = {}
    severity = G_LOGGER.module_severity
    G_LOGGER.module_severity = G_LOGGER.CRITICAL  # our summary lines replace Polygraphy's histograms
    try:
        for feed in feeds:
            ref = reference.infer(feed)
            got = candidate.infer(feed)
            verdict = compare(
                IterationResult(ref, runner_name="reference"), IterationResult(got, runner_name="candidate")
            )
            for name, res in verdict.items():
                s = stats.setdefault(name, {"max_abs": [], "max_rel": [], "mean_abs": [], "agree": []})
                s["max_abs"].append(float(res.max_absdiff))
                s["max_rel"].append(float(res.max_reldiff))
                s["mean_abs"].append(float(res.mean_absdiff))
                s["agree"].append(float(np.mean(ref[name].argmax(-1) == got[name].argmax(-1))))
                ok[name] = ok.get(name, True) and (bool(res) or not elementwise)
    finally:
        G_LOGGER.module_severity = severity
    outputs: dict[str, dict[str, float | bool]] = {}
    for name, s in stats.items():
        agreement = float(np.mean(s["agree"]))
        outputs[name] = {
            "max_abs": max(s["max_abs"]),
            "max_rel": max(s["max_rel"]),
            "mean_abs": float(np.mean(s["mean_abs"])),
            "agreement": agreement,
            "passed": ok[name] and agreement >= min_agree,
        }
    result = ComparisonResult(reference.info().backend, candidate.info().backend, prec, outputs)
    if check and not result.passed:
        failing = [line for line in result.lines() if line.startswith("FAIL")]
        raise ExportValidationError(f"candidate differs from the reference ({prec}): " + "; ".join(failing))
    return result


def runner_for(path: str | Path, *, threads: int | None = None) -> Runner:
    """The runner for an engine file: ONNX (ONNX Runtime) or a TensorRT ``.engine``/``.plan``."""
    p = Path(path)
    if p.suffix == ".onnx":
        from .backends.onnxruntime import OnnxRuntimeRunner
        from .export.precision import onnx_precision

        return OnnxRuntimeRunner(p, threads=threads, precision=onnx_precision(p) if p.is_file() else "fp32")
    if p.suffix in (".engine", ".plan"):
        from .backends.tensorrt import TensorRTRunner

        return TensorRTRunner(p)
    raise ConfigError(f"cannot tell what engine {p} is: expected a .onnx, .engine or .plan file")


def compare_files(
    reference: str | Path,
    candidate: str | Path,
    images: np.ndarray,
    *,
    batch_size: int = 32,
    threads: int | None = None,
    **kwargs: Any,
) -> ComparisonResult:
    """Compare two engine files on ``images`` [N, C, H, W] (real inputs) in batches."""
    ref, cand = runner_for(reference, threads=threads), runner_for(candidate, threads=threads)
    with ref, cand:
        name = ref.info().input_names[0]
        feeds = [{name: images[i : i + batch_size].astype(np.float32)} for i in range(0, len(images), batch_size)]
        return compare_runners(ref, cand, feeds, **kwargs)
