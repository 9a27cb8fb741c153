"""Channel alignment sweep: prune at several ``round_to`` values, time each on this backend, recommend.

Kernels run fastest on channel counts that match their vector width or tensor-core tile: a pruned model
whose widths are not multiples of it can be slower than the dense one (measured here with ONNX Runtime on
an AVX-512 CPU: MobileNetV2 rounded to 8 was slower than dense at batch 1, rounded to 16 it was 2.1x
faster). The sweep prunes the same model at the same MACs budget for every candidate alignment, exports
and times each against the dense model under identical settings, and recommends the fastest.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cosep_deploy.backends.onnxruntime.runner import OnnxRuntimeRunner
from cosep_deploy.bench.compat import check_reports_comparable
from cosep_deploy.bench.harness import BenchConfig, BenchReport, bench_runners
from cosep_deploy.errors import ConfigError, PruneError
from cosep_deploy.export.onnx import onnx_from_model
from cosep_deploy.progress import Progress, resolve_progress
from cosep_deploy.prune.api import PruneConfig, prune

__all__ = ["AlignmentResult", "sweep_alignment"]


@dataclasses.dataclass(frozen=True)
class AlignmentResult:
    round_to: int
    macs_ratio: float
    speedup: dict[str, dict[str, float]]  # batch -> speedup, ci_low, ci_high, latency_efficiency

    def score(self) -> float:
        """Geometric mean of the speed-ups over batch sizes (what the recommendation maximises)."""
        values = [max(s["speedup"], 1e-9) for s in self.speedup.values()]
        prod = 1.0
        for v in values:
            prod *= v
        return prod ** (1.0 / len(values))


def sweep_alignment(
    model: nn.Module,
    loader: Iterable[Any],
    example_inputs: torch.Tensor,
    *,
    candidates: Sequence[int] = (1, 8, 16, 32),
    prune_config: PruneConfig | None = None,
    bench_config: BenchConfig | None = None,
    threads: int | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Prune ``model`` once per alignment candidate and time each against the dense model (ONNX Runtime).

    ``prune_config`` should carry a ``target_macs_ratio`` so every candidate has (about) the same MACs and
    only the alignment differs. Returns ``{"results": [...], "recommended": round_to}``.
    """
    if not candidates or any(c < 1 for c in candidates):
        raise ConfigError(f"alignment candidates must be positive integers, got {list(candidates)}")
    base = prune_config or PruneConfig(target_macs_ratio=2.0)
    prog = resolve_progress(progress)
    shape = [int(d) for d in example_inputs.shape[1:]]
    results: list[AlignmentResult] = []
    saved: dict[str, dict[str, Any]] = {}
    skipped: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        dense_path = Path(tmp) / "dense.onnx"
        onnx_from_model(model, example_inputs, dense_path)
        for c in candidates:
            try:
                pruned, plan = prune(
                    model,
                    loader,
                    example_inputs=example_inputs,
                    config=dataclasses.replace(base, round_to=c),
                    progress=prog,
                )
            except PruneError as exc:  # this alignment cannot reach the budget (e.g. 32 on 16-channel groups)
                skipped.append({"round_to": c, "skipped": str(exc)})
                prog.log(f"round_to={c}: skipped ({exc})")
                continue
            path = Path(tmp) / f"pruned_r{c}.onnx"
            onnx_from_model(pruned, example_inputs, path)
            name = f"round_to={c}"
            macs = {"dense": int(plan.cost_before["macs"]), name: int(plan.cost_after["macs"])}
            report = _bench_against_dense(dense_path, path, name, shape, macs, threads, bench_config, prog)
            results.append(AlignmentResult(c, plan.macs_ratio, report.speedups[name]))
            saved[name] = {**report.to_json(), "settings": report.settings}
    return _recommendation(results, skipped, saved, candidates)


def _bench_against_dense(
    dense_path: Path,
    pruned_path: Path,
    name: str,
    shape: list[int],
    macs: dict[str, int],
    threads: int | None,
    bench_config: BenchConfig | None,
    prog: Progress,
) -> BenchReport:
    """The dense and one pruned ONNX timed together in ONNX Runtime, the dense one as the baseline."""
    runners = {
        "dense": OnnxRuntimeRunner(dense_path, threads=threads, name="dense"),
        name: OnnxRuntimeRunner(pruned_path, threads=threads, name=name),
    }
    with runners["dense"], runners[name]:
        return bench_runners(runners, shape, bench_config, baseline="dense", macs=macs, progress=prog)


def _recommendation(
    results: list[AlignmentResult],
    skipped: list[dict[str, Any]],
    saved: dict[str, dict[str, Any]],
    candidates: Sequence[int],
) -> dict[str, Any]:
    """The sweep's result: every timed candidate with its score, the skipped ones, and the best alignment."""
    if not results:
        raise PruneError(
            f"no alignment in {list(candidates)} reaches the run's MACs ratio: {skipped[0]['skipped']}; "
            "try smaller alignments"
        )
    check_reports_comparable(saved)  # every candidate was timed under the same conditions
    best = max(results, key=AlignmentResult.score)
    return {
        "results": [dataclasses.asdict(r) | {"score": r.score()} for r in results],
        "skipped": skipped,
        "recommended": best.round_to,
    }
