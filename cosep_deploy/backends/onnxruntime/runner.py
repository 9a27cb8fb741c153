"""ONNX Runtime on CPU: the embedded default backend.

Sessions get explicit thread settings (intra-op threads, one inter-op thread, sequential execution) so
dense and pruned models run under identical, recorded conditions.

Spin-waiting of ONNX Runtime's thread pools is off by default. With it on (ONNX Runtime's default), a
session's worker threads keep spinning after each run; when two sessions are timed in alternation, the
idle session's spinning workers take cores from the one being timed. Measured on a 2-core machine with two
sessions of the *same* ResNet-50 at batch 1 (2 intra-op threads each), interleaved: medians of 49 and 39
ms against 27 ms for one session alone, so an A/A comparison showed a 1.27x "speed-up"; with spinning off,
both medians were 27.5 ms, equal to one session alone. A single session timed on its own is up to a few
percent faster with spinning (``spin_wait=True``), but a fair comparison of two engines needs it off.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from cosep_deploy.backends.base import Runner, RunnerInfo, process_memory
from cosep_deploy.errors import EngineLoadError
from cosep_deploy.verbosity import get_logger, ort_log_severity

__all__ = ["OnnxRuntimeRunner", "ort_session_options"]

log = get_logger(__name__)


def ort_session_options(threads: int, *, graph_optimization: str = "all", spin_wait: bool = False) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    spin = "1" if spin_wait else "0"  # see the module's docstring: spinning skews interleaved timings
    opts.add_session_config_entry("session.intra_op.allow_spinning", spin)
    opts.add_session_config_entry("session.inter_op.allow_spinning", spin)
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    levels = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }
    opts.graph_optimization_level = levels[graph_optimization]
    opts.log_severity_level = ort_log_severity()  # 0 with -vv, 1 with -v, else errors only
    if opts.log_severity_level < 2:
        ort.set_default_logger_severity(opts.log_severity_level)  # environment and provider messages too
    return opts


class OnnxRuntimeRunner(Runner):
    """Runs an ONNX file with ONNX Runtime's CPU execution provider.

    ``InferenceSession.run`` is thread-safe, so the harness may drive one session from several threads.
    """

    concurrent_safe = True

    def __init__(
        self,
        onnx_path: str | os.PathLike[str],
        *,
        threads: int | None = None,
        precision: str = "fp32",
        graph_optimization: str = "all",
        spin_wait: bool = False,
        name: str | None = None,
    ) -> None:
        self.path = Path(onnx_path)
        self.threads = threads or min(os.cpu_count() or 1, 2)
        self.precision = precision
        self.graph_optimization = graph_optimization
        self.spin_wait = spin_wait
        self.name = name or self.path.stem
        self._session: Any = None
        self._rss_before: int | None = None  # process RSS just before the session was created
        self._load_rss: int | None = None

    def activate(self) -> None:
        import onnxruntime as ort

        if not self.path.is_file():
            raise EngineLoadError(f"ONNX file not found: {self.path}")
        self._check_manifest()
        before = process_memory()
        log.info(
            "loading %s with ONNX Runtime %s (CPUExecutionProvider, %d threads)",
            self.path,
            ort.__version__,
            self.threads,
        )
        try:
            self._session = ort.InferenceSession(
                str(self.path),
                sess_options=ort_session_options(
                    self.threads, graph_optimization=self.graph_optimization, spin_wait=self.spin_wait
                ),
                providers=["CPUExecutionProvider"],
            )
        except Exception as exc:  # ORT raises its own exception types for corrupt or invalid models
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise EngineLoadError(
                f"ONNX Runtime cannot load {self.path} (corrupted, truncated or not an ONNX model?): {first}"
            ) from exc
        after = process_memory()
        self._rss_before = before["rss_bytes"] if before else None
        self._load_rss = after["rss_bytes"] - before["rss_bytes"] if before and after else None

    def memory(self) -> dict[str, Any] | None:
        """The model file's size; the resident-set growth while the session was created (weights, prepacked
        kernels, graph); the growth from then to now (adds the arenas that running at the batch sizes used
        so far allocated); the process's current and peak resident set. Growth since creation and the
        process figures are process-wide: sessions created or run after this one count in them too."""
        now = process_memory()
        if now is None:
            return None
        growth = now["rss_bytes"] - self._rss_before if self._rss_before is not None else None
        return {
            "model_file_bytes": self.path.stat().st_size if self.path.is_file() else None,
            "session_load_rss_bytes": self._load_rss,
            "rss_growth_since_load_bytes": growth,
            "process_rss_bytes": now["rss_bytes"],
            "process_peak_rss_bytes": now["peak_rss_bytes"],
        }

    def _check_manifest(self) -> None:
        """A built engine carries a manifest: refuse a damaged file or one made by another ORT version."""
        import onnxruntime as ort

        from cosep_deploy.engines.manifest import (
            EngineManifest,
            check_manifest_against,
            manifest_path_for,
            verify_engine_file,
        )

        manifest_file = manifest_path_for(self.path)
        if not manifest_file.is_file():
            return  # a plain ONNX file, not a built engine
        manifest = EngineManifest.load(manifest_file)
        verify_engine_file(manifest, self.path)
        check_manifest_against(manifest, runtime_version=str(ort.__version__), device_name="cpu", compute_capability="")

    def deactivate(self) -> None:
        self._session = None

    @property
    def session(self) -> Any:
        if self._session is None:
            self.activate()
        return self._session

    def info(self) -> RunnerInfo:
        import onnxruntime as ort

        sess = self.session
        return RunnerInfo(
            backend="onnxruntime",
            runtime_version=str(ort.__version__),
            device="cpu",
            precision=self.precision,
            settings={
                "provider": "CPUExecutionProvider",
                "intra_op_threads": self.threads,
                "inter_op_threads": 1,
                "execution_mode": "sequential",
                "graph_optimization": self.graph_optimization,
                "spin_wait": self.spin_wait,
            },
            input_names=tuple(i.name for i in sess.get_inputs()),
            input_shapes={i.name: tuple(i.shape) for i in sess.get_inputs()},
            output_names=tuple(o.name for o in sess.get_outputs()),
        )

    def input_shape(self) -> list[Any]:
        """The first input's shape with symbolic dims as strings (e.g. ['batch', 3, 32, 32])."""
        return list(self.session.get_inputs()[0].shape)

    def infer(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        sess = self.session
        outs = sess.run(None, dict(feed))
        return {o.name: np.asarray(v) for o, v in zip(sess.get_outputs(), outs, strict=True)}
