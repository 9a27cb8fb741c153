"""Latency-targeted pruning: measured per-layer latency tables, allocation of kept channels per group to
meet a requested speed-up (or latency budget) while retaining the most class separability, closed loop.

- :mod:`.layers`: the model's convolution/linear layers, their shapes and which channel groups set their
  input and output widths.
- :mod:`.table`: the latency table artifact (format, cache key, refusal of foreign or stale tables).
- :mod:`.measure_ort`: building a table on ONNX Runtime (CPU) from one small ONNX graph per layer shape.
- :mod:`.order` and :mod:`.allocate`: CoSeP channel order and separability curves; the count allocation.
- :mod:`.loop`: the closed loop (prune, export, measure with the interleaved harness, correct, repeat).
"""

from cosep_deploy.latency.allocate import Allocation, allocate_counts, allocate_exhaustive
from cosep_deploy.latency.layers import LayerSpec, layer_specs
from cosep_deploy.latency.table import LatencyTable, TableKey

__all__ = [
    "Allocation",
    "LatencyTable",
    "LayerSpec",
    "TableKey",
    "allocate_counts",
    "allocate_exhaustive",
    "layer_specs",
]
