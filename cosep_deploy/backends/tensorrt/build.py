"""TensorRT engines from ONNX files: one import point for the build side (and the runner).

Two build paths, picked by what the installed TensorRT offers rather than by its version string:

- **strongly typed** (10.x, 11.x): the ``STRONGLY_TYPED`` network flag; every tensor keeps the type the ONNX
  gives it, so the precision was decided at export (a mixed-precision ONNX for fp16, Q/DQ nodes for int8).
  11.x has no other path.
- **flag based** (8.x): ``BuilderFlag.FP16`` / ``INT8`` let the builder pick precisions per layer. We ship
  no INT8 calibrators, so INT8 needs Q/DQ nodes in the ONNX here too (explicit quantization).

The parts: :mod:`.plan` (configuration, ONNX summary, profile, capabilities, flags: no TensorRT needed),
:mod:`.engine` (the build itself), :mod:`.cache` (the engine cache around it), :mod:`.identity` (which device
an engine belongs to), :mod:`.runner` (running an engine), :mod:`.cuda` (CUDA bindings).
"""

from __future__ import annotations

from cosep_deploy.backends.tensorrt.cache import cached_engine_from_onnx, tensorrt_cache_key
from cosep_deploy.backends.tensorrt.engine import engine_from_onnx
from cosep_deploy.backends.tensorrt.plan import (
    BuildPlan,
    OnnxSummary,
    TensorRTBuildConfig,
    TrtCapabilities,
    dla_refusal,
    plan_build,
    resolve_profile,
    summarize_onnx,
    trt_capabilities,
)
from cosep_deploy.backends.tensorrt.runner import TensorRTRunner

__all__ = [
    "BuildPlan",
    "OnnxSummary",
    "TensorRTBuildConfig",
    "TensorRTRunner",
    "TrtCapabilities",
    "cached_engine_from_onnx",
    "dla_refusal",
    "engine_from_onnx",
    "plan_build",
    "resolve_profile",
    "summarize_onnx",
    "tensorrt_cache_key",
    "trt_capabilities",
]
