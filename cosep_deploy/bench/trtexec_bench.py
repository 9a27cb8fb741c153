"""Dense vs pruned TensorRT engines timed by trtexec, interleaved, from its per-iteration JSON.

trtexec is what NVIDIA's own numbers come from, and on a Jetson it is often the only TensorRT front end
installed. Each engine runs in rounds (A B B A ...), every round a fresh ``trtexec --loadEngine`` for a
fixed count and duration with CUDA graphs, spin-wait and no host-device copies (explicit for every
version, see :func:`~cosep_deploy.backends.trtexec.command.trtexec_command`); ``--exportTimes`` gives the GPU
compute time of every iteration. Iteration ``i`` of a round of one engine is paired with iteration ``i``
of the same round of the other, and the speed-up and its interval come from :func:`.stats.paired_speedup`,
as in the in-process harness. The result is a :class:`~.harness.BenchReport` like any other backend's.
Engines must carry the manifest cosep-deploy writes; one built by another TensorRT release is refused.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cosep_deploy.backends.trtexec.command import (
    TrtexecConfig,
    find_trtexec,
    run_trtexec,
    trtexec_command,
    trtexec_version,
)
from cosep_deploy.backends.trtexec.parse import parse_export_times
from cosep_deploy.bench.harness import BenchConfig, BenchReport, bench_report, speedups_against
from cosep_deploy.bench.stats import summarize
from cosep_deploy.engines.manifest import EngineManifest, manifest_path_for, verify_engine_file
from cosep_deploy.errors import BenchError, EngineLoadError, MissingDependencyError
from cosep_deploy.progress import Progress, resolve_progress

__all__ = ["bench_trtexec"]


def _manifests(engines: Mapping[str, Path], version: tuple[int, int, int]) -> dict[str, EngineManifest]:
    out = {}
    for name, path in engines.items():
        manifest_file = manifest_path_for(path)
        if not manifest_file.is_file():
            raise EngineLoadError(f"no manifest {manifest_file.name} beside {path}: build engines with cosep-deploy")
        manifest = EngineManifest.load(manifest_file)
        verify_engine_file(manifest, path)
        # engines load only in the TensorRT release that built them: compare the full version, patch included
        built = tuple(int(p) for p in manifest.runtime_version.split(".")[:3] if p.isdigit())
        if built != tuple(version[: len(built)]) or len(built) < 3:
            raise EngineLoadError(
                f"engine {path} was built by TensorRT {manifest.runtime_version}, but this trtexec is "
                f"{'.'.join(map(str, version))}: rebuild it here (engines do not move between releases)"
            )
        out[name] = manifest
    precisions = {m.precision for m in out.values()}
    if len(precisions) > 1:
        raise BenchError(f"engines of different precisions ({sorted(precisions)}) cannot be compared fairly")
    cores = {m.dla_core for m in out.values()}
    if len(cores) > 1:
        raise BenchError(f"engines on different devices (DLA cores {sorted(map(str, cores))}) cannot be compared")
    return out


def _check_request(cfg: BenchConfig, rounds: int, paths: Mapping[str, Path], baseline: str | None) -> str:
    """The baseline's name, once the request is one trtexec can answer fairly."""
    if cfg.mode != "latency":
        raise BenchError("trtexec benchmarks run in latency mode (for multi-stream throughput use trtexec --streams)")
    if rounds < 2:
        raise BenchError(f"at least 2 rounds are needed to interleave, got {rounds}")
    if not paths:
        raise BenchError("nothing to benchmark: give at least one engine")
    base = baseline or next(iter(paths))
    if base not in paths:
        raise BenchError(f"baseline {base!r} is not among the engines {list(paths)}")
    return base


@dataclasses.dataclass(frozen=True)
class _Rounds:
    """Interleaved trtexec rounds over the engines, one batch size at a time; ``tmp`` holds the exported times."""

    exe: Path
    version: tuple[int, int, int]
    paths: Mapping[str, Path]
    manifests: Mapping[str, EngineManifest]
    cfg: BenchConfig
    rounds: int
    tmp: Path

    def batch(self, shape: dict[str, tuple[int, ...]], batch: int) -> tuple[dict[str, list[float]], str | None]:
        """Seconds per iteration of every engine (iteration ``i`` of a round paired across engines), and the
        device trtexec last named."""
        names = list(self.paths)
        times: dict[str, list[float]] = {n: [] for n in names}
        device = None
        for r in range(self.rounds):
            got: dict[str, np.ndarray] = {}
            for n in names if r % 2 == 0 else names[::-1]:
                got[n], named = self._run(n, shape, batch, r)
                device = named or device
            keep = min(len(v) for v in got.values())  # pair iteration i of this round across engines
            if keep == 0:
                raise BenchError(f"trtexec exported no GPU compute times at batch {batch}")
            for n in names:
                times[n] += [float(t) / 1e3 for t in got[n][:keep]]
        return times, device

    def _run(self, name: str, shape: dict[str, tuple[int, ...]], batch: int, r: int) -> tuple[np.ndarray, str | None]:
        """One ``trtexec --loadEngine`` of one engine: its finite GPU compute times (ms) and the device name."""
        export = self.tmp / f"{name}.b{batch}.r{r}.times.json"
        tconf = TrtexecConfig(
            load_engine=self.paths[name],
            shapes=shape,
            dla_core=self.manifests[name].dla_core,
            iterations=max(math.ceil(self.cfg.iterations / self.rounds), 1),
            duration_s=self.cfg.min_seconds / self.rounds,
            warmup_ms=max(self.cfg.warmup_seconds * 1e3, 1.0),
            export_times=export,
            profiling_verbosity_detailed=False,
        )
        result = run_trtexec(trtexec_command(tconf, version=self.version, executable=self.exe))
        compute = parse_export_times(export).compute_ms
        return compute[np.isfinite(compute)], result.summary.device_name


def _report_engines(
    paths: Mapping[str, Path],
    times: Mapping[str, Mapping[int, list[float]]],
    settings: Mapping[str, Any],
    input_name: str,
    cfg: BenchConfig,
    macs: Mapping[str, int] | None,
) -> dict[str, Any]:
    """Each engine's entry of the report: what ran (as a runner's info would say) and its times per batch."""
    report_engines: dict[str, Any] = {}
    for n in paths:
        info = {
            "backend": "trtexec",
            "runtime_version": settings["runtime_version"],
            "device": settings["device"],
            "precision": settings["precision"],
            "settings": {
                k: v for k, v in settings.items() if k not in ("backend", "runtime_version", "device", "precision")
            },
            "input_names": [input_name],
            "output_names": [],
            "input_shapes": {},
        }
        report_engines[n] = {
            "info": info,
            "macs": (macs or {}).get(n),
            "memory": {"engine_file_bytes": paths[n].stat().st_size},
            "results": {
                str(b): {**summarize(times[n][b], b), "times_ms": [t * 1e3 for t in times[n][b]]}
                for b in cfg.batch_sizes
            },
        }
    return report_engines


def bench_trtexec(
    engines: Mapping[str, str | Path],
    input_name: str,
    input_shape: Sequence[int],
    config: BenchConfig | None = None,
    *,
    baseline: str | None = None,
    macs: Mapping[str, int] | None = None,
    rounds: int = 4,
    executable: str | Path | None = None,
    progress: Progress | None = None,
) -> BenchReport:
    """Time every engine at every batch size with trtexec in interleaved rounds; speed-ups vs ``baseline``.

    Per round and engine: at least ``ceil(config.iterations / rounds)`` iterations and
    ``config.min_seconds / rounds`` seconds, after ``config.warmup_seconds`` of warm-up (trtexec --warmUp).
    """
    cfg = config or BenchConfig()
    paths = {name: Path(p) for name, p in engines.items()}
    base = _check_request(cfg, rounds, paths, baseline)
    exe = Path(executable) if executable is not None else find_trtexec()
    if exe is None:
        raise MissingDependencyError("trtexec not found (it ships with JetPack and NVIDIA's TensorRT packages)")
    version = trtexec_version(exe)
    manifests = _manifests(paths, version)
    prog = resolve_progress(progress)
    times: dict[str, dict[int, list[float]]] = {n: {} for n in paths}
    device = "unknown"
    start = time.perf_counter()
    with (
        tempfile.TemporaryDirectory() as tmp,
        prog.task("trtexec " + " vs ".join(paths), total=len(cfg.batch_sizes)) as task,
    ):
        timing = _Rounds(exe, version, paths, manifests, cfg, rounds, Path(tmp))
        for batch in cfg.batch_sizes:
            got, named = timing.batch({input_name: (batch, *(int(d) for d in input_shape))}, batch)
            device = named or device
            for n, seconds in got.items():
                times[n][batch] = seconds
            task.advance()
    settings = {
        "backend": "trtexec",
        "runtime_version": ".".join(map(str, version)),
        "device": device,
        "precision": manifests[base].precision,
        "cuda_graph": True,
        "spin_wait": True,
        "data_transfers": False,
        "timer": "GPU compute time (--exportTimes)",
        "rounds": rounds,
        "dla_core": manifests[base].dla_core,
    }
    report_engines = _report_engines(paths, times, settings, input_name, cfg, macs)
    speedups = speedups_against(base, times, cfg, macs)
    return bench_report(base, report_engines, speedups, settings, cfg, input_shape, start, mode="latency")
