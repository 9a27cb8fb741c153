"""The run directory: where every stage reads its inputs and writes its artifacts.

```
RUN/
  run.json                  what was asked (model, data, options) and which stages ran
  dense/                    model.safetensors + model.json (spec) + train.json
  pruned/                   plan.json + weights.safetensors (selection + surgery, before fine-tuning)
  finetuned/                plan.json + weights.safetensors + finetune.json
  onnx/                     dense.onnx, pruned.onnx (+ .onnx.json: validation, hashes)
  engines/<target>/         built engines + manifest.json
  bench/bench.json          timings, speed-ups, environment
  bench/layers.json         per-layer times, dense vs pruned (ONNX Runtime profiler or trtexec)
  report.md, summary.json   the one-screen summary and the report
```
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

__all__ = ["RunLayout"]


@dataclasses.dataclass(frozen=True)
class RunLayout:
    root: Path

    @property
    def run_json(self) -> Path:
        return self.root / "run.json"

    @property
    def dense(self) -> Path:
        return self.root / "dense"

    @property
    def pruned(self) -> Path:
        return self.root / "pruned"

    @property
    def finetuned(self) -> Path:
        return self.root / "finetuned"

    @property
    def onnx(self) -> Path:
        return self.root / "onnx"

    def engines(self, target: str) -> Path:
        return self.root / "engines" / target

    @property
    def bench(self) -> Path:
        return self.root / "bench"

    @property
    def layers_json(self) -> Path:
        return self.root / "bench" / "layers.json"

    @property
    def report_md(self) -> Path:
        return self.root / "report.md"

    @property
    def summary_json(self) -> Path:
        return self.root / "summary.json"
