"""One runner per engine kind behind :class:`~cosep_deploy.backends.base.Runner`.

Only the ONNX Runtime and torch runners are imported eagerly-free of heavy backends; TensorRT,
trtexec and torch-tensorrt runners import their runtimes inside their methods.
"""

from cosep_deploy.backends.base import Runner, RunnerInfo, TimedRun

__all__ = ["Runner", "RunnerInfo", "TimedRun"]
