"""The runner for an artifact on disk, chosen by what it is: an ONNX file, a TensorRT engine, or a run's
model directory (PyTorch or Torch-TensorRT). Every backend is imported only when chosen."""

from __future__ import annotations

from pathlib import Path

from cosep_deploy.backends.base import Runner
from cosep_deploy.errors import ConfigError, unknown_name

__all__ = ["MODEL_DIR_BACKENDS", "runner_for"]


MODEL_DIR_BACKENDS = ("torch", "torch-tensorrt")


def runner_for(
    path: str | Path,
    *,
    threads: int | None = None,
    backend: str | None = None,
    device: int = 0,
    precision: str | None = None,
) -> Runner:
    """The runner for an engine file: ``.onnx`` (ONNX Runtime, CPU; a built engine's manifest is checked)
    or a TensorRT ``.engine``/``.plan`` on GPU ``device`` (needs TensorRT and a GPU; an engine with a manifest
    beside it is checked against it, one without, such as trtexec's ``--saveEngine``, is loaded as trtexec
    would, TensorRT itself refusing one of another release, and labelled ``precision``). A model directory of a run
    (``RUN/dense``, ``RUN/pruned``, ``RUN/finetuned``) runs in PyTorch: ``backend="torch"`` (the default,
    eager on the CPU) or ``backend="torch-tensorrt"`` (compiled by Torch-TensorRT, needs a GPU)."""
    p = Path(path)
    if p.is_dir():
        return _model_dir_runner(p, backend or "torch", threads)
    if backend is not None:
        raise ConfigError(f"backend {backend!r} applies to model directories; {p} is run by its file type")
    if p.suffix == ".onnx":
        from cosep_deploy.backends.onnxruntime.runner import OnnxRuntimeRunner
        from cosep_deploy.onnx_info import onnx_precision

        return OnnxRuntimeRunner(p, threads=threads, precision=onnx_precision(p) if p.is_file() else "fp32")
    if p.suffix in (".engine", ".plan"):
        from cosep_deploy.backends.tensorrt.runner import TensorRTRunner
        from cosep_deploy.engines.manifest import manifest_path_for

        has_manifest = manifest_path_for(p).is_file()
        return TensorRTRunner(p, device=device, check_target=has_manifest, precision=precision)
    raise ConfigError(f"cannot tell what engine {p} is: expected a .onnx, .engine or .plan file, or a model directory")


def _model_dir_runner(directory: Path, backend: str, threads: int | None) -> Runner:
    if backend not in MODEL_DIR_BACKENDS:
        raise ConfigError(unknown_name("backend for a model directory", backend, MODEL_DIR_BACKENDS))
    if (directory / "plan.json").is_file():
        from cosep_deploy.prune.plan import load_pruned

        model, plan = load_pruned(directory)
        shape = tuple(int(d) for d in plan.input_shape)
    elif (directory / "model.json").is_file():
        from cosep_deploy.models import load_checkpoint

        model, spec, _ = load_checkpoint(directory)
        shape = (spec.in_channels, spec.image_size, spec.image_size)
    else:
        raise ConfigError(f"{directory} holds neither a pruned model (plan.json) nor a checkpoint (model.json)")
    if backend == "torch":
        from cosep_deploy.backends.torch.runner import TorchRunner

        return TorchRunner(model, threads=threads, input_shape=shape, name=directory.name)
    from cosep_deploy.backends.torch_tensorrt.runner import TorchTensorRTRunner

    return TorchTensorRTRunner(model, input_shape=shape, name=directory.name)
