"""Deploy bundles: everything a Jetson board needs to build and benchmark dense vs pruned by itself.

TensorRT engines cannot be built on an x86 host for a Jetson: they are tied to the board's GPU and TensorRT
release. So the host exports ONNX files (precision already decided) and packs, for one target, the dense and
the pruned model together with ``bundle.json`` (every engine and its trtexec arguments per flag family,
prepared by :func:`~cosep_deploy.backends.trtexec.command.trtexec_command`, so the flags have one source) and
the stdlib-only on-board package (:mod:`cosep_deploy.board.onboard`, copied as ``cosep_onboard/``). On the
board ``./build_and_bench.sh`` runs it with the board's own Python 3.8+: it reads the TensorRT version from
trtexec, builds every engine, times dense and pruned interleaved, and writes ``results/board.json`` and a
manifest per engine. ``cosep-deploy collect`` brings them back into the run directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cosep_deploy._version import __version__
from cosep_deploy.artifacts import sha256_file, staged_dir, write_json
from cosep_deploy.backends.tensorrt.plan import summarize_onnx
from cosep_deploy.backends.trtexec.command import TrtexecConfig, trtexec_command
from cosep_deploy.backends.trtexec.parse import TrtexecVersion
from cosep_deploy.engines.manifest import EngineManifest, utc_now
from cosep_deploy.errors import ConfigError, unknown_name
from cosep_deploy.onnx_compat import require_compatible
from cosep_deploy.target_profile import TargetProfile

__all__ = ["BASELINE", "BUNDLE_SCHEMA_VERSION", "FAMILIES", "ONBOARD_DIR", "jetson_bundle_from_onnx"]

BUNDLE_SCHEMA_VERSION = 2
BASELINE = "dense"
ONBOARD_DIR = Path(__file__).resolve().parent / "onboard"
# trtexec flag families, newest first: the board takes the first whose version it reaches. Each boundary is
# a flag change: 11.0 (weak typing and --separateProfileRun gone, new defaults), 10.0 (--stronglyTyped),
# 8.6 (--skipInference, percentile lists, --builderOptimizationLevel). Commands use the family's oldest.
FAMILIES: dict[str, tuple[TrtexecVersion, bool]] = {
    "strict": (TrtexecVersion(11, 0, 0), True),
    "typed": (TrtexecVersion(10, 0, 0), True),
    "weak86": (TrtexecVersion(8, 6, 0), False),
    "weak85": (TrtexecVersion(8, 5, 0), False),
}
# manifest fields the board fills, where the manifest schema has them (device identity fields included)
_ON_BOARD_FIELDS = (
    "engine_sha256",
    "engine_bytes",
    "runtime_version",
    "device_name",
    "compute_capability",
    "build_seconds",
    "created",
    "device_sm_count",
    "device_memory_bytes",
    "board_model",
    "power_mode",
    "tensorrt_package_version",
)


def _fill_on_board() -> list[str]:
    import dataclasses

    names = {f.name for f in dataclasses.fields(EngineManifest)}
    return [k for k in _ON_BOARD_FIELDS if k in names]


def jetson_bundle_from_onnx(
    models: Mapping[str, Mapping[str, str | os.PathLike[str]]],
    target: TargetProfile,
    out_dir: str | os.PathLike[str],
    *,
    batch_sizes: Sequence[int] = (1, 8, 40),
    rounds: int = 6,
    seconds_per_round: float = 2.0,
    warmup_ms: float = 500.0,
    overwrite: bool = False,
) -> Path:
    """Write one bundle ``out_dir`` for ``target`` holding every model ({"dense": {precision: onnx}, "pruned":
    {...}}); returns ``out_dir``. Written whole or not at all; every ONNX must parse on every TensorRT release
    in the target's range."""
    sizes = _check_request(models, target, batch_sizes, rounds)
    engines: list[dict[str, Any]] = []
    sources: dict[str, Path] = {}
    for model, files in models.items():
        if not files:
            raise ConfigError(f"no ONNX files given for {model!r} (expected {{precision: path}})")
        for precision, path in files.items():
            src = _checked_onnx(Path(path), model, precision, target)
            onnx_name = f"{model}.{precision}.onnx"
            sources[onnx_name] = src
            engines += _engine_entries(src, model, onnx_name, precision, sizes, target, seconds_per_round, warmup_ms)
    plan = _bundle_plan(models, target, sources, sizes, rounds, engines)
    with staged_dir(out_dir, overwrite=overwrite) as tmp:
        (tmp / "onnx").mkdir()
        for name, src in sources.items():
            shutil.copyfile(src, tmp / "onnx" / name)
        (tmp / "target.toml").write_text(target.to_toml(), encoding="utf-8")
        write_json(tmp / "bundle.json", plan)
        shutil.copytree(
            ONBOARD_DIR, tmp / "cosep_onboard", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "ruff.toml")
        )
        script = tmp / "build_and_bench.sh"
        script.write_text(_SCRIPT.replace("@TARGET@", target.name), encoding="utf-8")
        script.chmod(0o755)
        (tmp / "README.md").write_text(_readme(target, Path(out_dir).name, engines), encoding="utf-8")
    return Path(out_dir)


def _check_request(
    models: Mapping[str, Mapping[str, Any]], target: TargetProfile, batch_sizes: Sequence[int], rounds: int
) -> list[int]:
    """The batch sizes, sorted, once the target, the model names and the timing plan make a bundle."""
    if target.backend != "tensorrt":
        raise ConfigError(f"target {target.name!r} runs {target.backend}, there is no engine to build on a board")
    if BASELINE not in models:
        raise ConfigError(f"a bundle needs the {BASELINE!r} model as the baseline, found {sorted(models)}")
    for name in models:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", name):
            raise ConfigError(f"model name {name!r} must be letters, digits, '_' or '-' (it names files)")
    sizes = sorted(set(batch_sizes))
    if not sizes or any(not isinstance(b, int) or b < 1 for b in sizes):
        raise ConfigError(f"batch_sizes must be positive integers, found {list(batch_sizes)}")
    if rounds < 2 or rounds % 2:
        raise ConfigError(f"rounds must be an even number >= 2 (dense, pruned, pruned, dense ...), found {rounds}")
    return sizes


def _checked_onnx(src: Path, model: str, precision: str, target: TargetProfile) -> Path:
    """``src``, once it exists, its precision is one of the target's, and every release of the target parses it."""
    if precision not in target.precisions:
        raise ConfigError(unknown_name(f"precision for target {target.name!r}", precision, target.precisions))
    if not src.is_file():
        raise ConfigError(f"ONNX file for {model} {precision} not found: {src}")
    require_compatible(src, target.tensorrt_releases, what=f"{src} ({model}, {precision})")
    return src


def _bundle_plan(
    models: Mapping[str, Any],
    target: TargetProfile,
    sources: Mapping[str, Path],
    sizes: list[int],
    rounds: int,
    engines: list[dict[str, Any]],
) -> dict[str, Any]:
    """``bundle.json``: what the board reads (target facts, flag families, timing plan, engines)."""
    onnx_sha = {f"onnx/{name}": sha256_file(src) for name, src in sorted(sources.items())}
    return {
        "schema": "jetson_bundle",
        "schema_version": BUNDLE_SCHEMA_VERSION,
        "bundle_id": hashlib.sha256(json.dumps([target.name, onnx_sha, sizes, rounds]).encode()).hexdigest()[:16],
        "target": {
            "name": target.name,
            "tensorrt_range": target.tensorrt,
            "tensorrt_releases": list(target.tensorrt_releases),
            "max_power_modes": list(target.power.max_modes),
            "max_power_mode_id": target.power.max_mode_id,
            "dla_core": 0 if target.dla.use_dla else None,
        },
        "models": sorted(models),
        "baseline": BASELINE,
        "rounds": rounds,
        "resamples": 1000,
        "seed": 0,
        "families": [{"name": n, "min_version": list(v)} for n, (v, _) in FAMILIES.items()],
        "fill_on_board": _fill_on_board(),
        "generated_by": f"cosep-deploy {__version__}",
        "created": utc_now(),
        "onnx": onnx_sha,
        "engines": engines,
    }


def _batch_shapes(inputs: Mapping[str, tuple[int | str, ...]], batch: int, src: Path) -> dict[str, tuple[int, ...]]:
    """Input shapes at ``batch``; {} when the ONNX is fully static at that batch (trtexec takes no shapes)."""
    shapes, dynamic = {}, False
    for name, dims in inputs.items():
        if not dims:
            raise ConfigError(f"{src}: input {name!r} has no shape information")
        if any(not isinstance(d, int) for d in dims[1:]):
            raise ConfigError(f"{src}: input {name!r} has dynamic dims besides the batch: {dims}")
        if isinstance(dims[0], int) and dims[0] != batch:
            raise ConfigError(
                f"{src}: input {name!r} has a fixed batch of {dims[0]}; export with a dynamic "
                f"batch to build batch {batch}"
            )
        dynamic = dynamic or not isinstance(dims[0], int)
        shapes[name] = (batch, *(int(d) for d in dims[1:]))
    return shapes if dynamic else {}


def _engine_entries(
    src: Path,
    model: str,
    onnx_name: str,
    precision: str,
    sizes: list[int],
    target: TargetProfile,
    seconds_per_round: float,
    warmup_ms: float,
) -> list[dict[str, Any]]:
    """The bundle's entries for one ONNX file: one engine per batch size, each with its trtexec commands per
    flag family, the manifest the board completes, and the families that cannot build it (and why)."""
    summary = summarize_onnx(src)
    _check_precision_in_file(src, precision, summary.has_qdq, summary.has_fp16)
    dla_core = 0 if target.dla.use_dla else None
    onnx_sha = sha256_file(src)
    refused = _refused_families(precision, dla_core)
    timing = {"_seconds": seconds_per_round, "_warmup": warmup_ms}
    out = []
    for batch in sizes:
        ident = f"{model}.{precision}.b{batch}"
        shapes = _batch_shapes(summary.inputs, batch, src)
        base: dict[str, Any] = dict(
            onnx=Path("onnx") / onnx_name,
            save_engine=Path("engines") / f"{ident}.engine",
            precision=precision,
            min_shapes=shapes or None,  # one batch per engine: static profiles (what DLA needs too)
            opt_shapes=shapes or None,
            max_shapes=shapes or None,
            shapes=shapes or None,
            workspace_mib=target.workspace_mib,
            timing_cache=Path("engines") / "timing.cache",
            dla_core=dla_core,
            gpu_fallback=target.dla.gpu_fallback,
        )
        build_options = {"batch": batch, "shapes": {k: list(v) for k, v in shapes.items()}, "model": model}
        out.append(
            {
                "id": ident,
                "refused": dict(refused),
                "model": model,
                "precision": precision,
                "batch": batch,
                "onnx": f"onnx/{onnx_name}",
                "engine": f"engines/{ident}.engine",
                "log": f"results/logs/{ident}.build.log",
                "commands": _commands_with(base, timing, ident, dla_core),
                "manifest": _board_manifest(ident, onnx_name, onnx_sha, precision, target, dla_core, build_options),
            }
        )
    return out


def _check_precision_in_file(src: Path, precision: str, has_qdq: bool, has_fp16: bool) -> None:
    """TensorRT 10/11 take the precision from the file: an int8 or fp16 variant must carry it."""
    if precision == "int8" and not has_qdq:
        raise ConfigError(f"{src}: the int8 variant needs Q/DQ nodes (post-training quantization); this ONNX has none")
    if precision == "fp16" and not has_fp16:
        raise ConfigError(
            f"{src}: the fp16 variant must be a mixed-precision ONNX (TensorRT 10/11 take the "
            "precision from the file); this one is all fp32"
        )


def _refused_families(precision: str, dla_core: int | None) -> dict[str, str]:
    """Flag families that cannot build this engine, with the reason the board prints."""
    return {
        fam: "TensorRT 8.x cannot run explicitly quantized (Q/DQ) INT8 layers on DLA: use fp16 on DLA, "
        "or a profile without DLA for int8"
        for fam, (version, _) in FAMILIES.items()
        if dla_core is not None and precision == "int8" and version.major < 10
    }


def _board_manifest(
    ident: str,
    onnx_name: str,
    onnx_sha: str,
    precision: str,
    target: TargetProfile,
    dla_core: int | None,
    build_options: dict[str, Any],
) -> dict[str, Any]:
    """The engine's manifest as far as the host knows it; the board fills the ``fill_on_board`` fields."""
    manifest = EngineManifest(
        engine_file=f"{ident}.engine",
        engine_sha256="",
        engine_bytes=0,
        onnx_file=onnx_name,
        onnx_sha256=onnx_sha,
        precision=precision,
        target=target.name,
        backend="trtexec",
        runtime="TensorRT",
        runtime_version="",
        device_name="",
        compute_capability="",
        dla_core=dla_core,
        build_options=build_options,
    ).to_json()
    manifest.update(dict.fromkeys(_fill_on_board()))
    return manifest


def _commands_with(
    base: dict[str, Any], timing: dict[str, float], ident: str, dla_core: int | None
) -> dict[str, dict[str, list[str]]]:
    shapes = base["shapes"]
    build_cfg = dict(base)  # with --shapes: 8.5 has no --skipInference and runs a short inference after the build
    load: dict[str, Any] = dict(
        load_engine=base["save_engine"], shapes=shapes, dla_core=dla_core, profiling_verbosity_detailed=False
    )
    out = {}
    for family, (version, typed) in FAMILIES.items():
        configs = {
            "build": TrtexecConfig(**build_cfg, strongly_typed=typed, skip_inference=True),
            "bench": TrtexecConfig(
                **load, duration_s=timing["_seconds"], warmup_ms=timing["_warmup"], export_times=Path("@TIMES@")
            ),
            "profile": TrtexecConfig(
                **load,
                iterations=20,
                duration_s=0,
                export_profile=Path(f"results/{ident}.profile.json"),
                export_layer_info=Path(f"results/{ident}.layers.json"),
            ),
        }
        out[family] = {
            name: [str(a) for a in trtexec_command(cfg, version=version)[1:]] for name, cfg in configs.items()
        }
    return out


_SCRIPT = r"""#!/usr/bin/env bash
# Build and benchmark dense vs pruned TensorRT engines for target @TARGET@ on the board (generated by
# cosep-deploy). Needs only JetPack: trtexec and the board's python3 (3.8 or newer).
# Usage: ./build_and_bench.sh [--rounds N] [--trtexec PATH]     (env: PYTHON=python3, TRTEXEC=...)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 8) else 1)' 2>/dev/null; then
  echo "error: $PY is missing or older than Python 3.8 (JetPack 5 ships 3.8); set PYTHON=/path/to/python3" >&2
  exit 1
fi
cd "$HERE"
exec "$PY" -m cosep_onboard --bundle "$HERE" "$@"
"""


def _readme(target: TargetProfile, bundle: str, engines: list[dict[str, Any]]) -> str:
    rows = "\n".join(f"| `{e['id']}` | {e['model']} | {e['precision']} | {e['batch']} |" for e in engines)
    mode = "/".join(target.power.max_modes) or "the maximum mode"
    ident = target.power.max_mode_id if target.power.max_mode_id is not None else "ID"
    return f"""# Deploy bundle for {target.name}: dense vs pruned

{target.description}. TensorRT {target.tensorrt} (releases {", ".join(target.tensorrt_releases)}), JetPack
{target.jetpack or "-"}. Generated by cosep-deploy {__version__}. Engines must be built on the board that runs
them, so this folder holds the ONNX files (precision already inside them) and a stdlib-only Python package
(`cosep_onboard/`, Python 3.8+) that builds and benchmarks there with JetPack's trtexec.

## On the board
1. Copy this folder to the board: `scp -r {bundle} user@board:`.
2. Maximum power and locked clocks: `sudo nvpmodel -m {ident}` ({mode}; ids differ per JetPack, see
   `/etc/nvpmodel.conf`) and `sudo jetson_clocks`.
3. `sudo ./build_and_bench.sh` (root lets it record `jetson_clocks --show`; without sudo the clocks are
   recorded as missing). It builds every engine, then times dense and pruned in interleaved trtexec rounds
   (dense, pruned, pruned, dense, ...), samples tegrastats, and prints the speed-up per precision and batch
   with a 95% bootstrap interval.
4. Copy the folder back and run `cosep-deploy collect --run RUN_DIR {bundle}` on the host; `cosep-deploy
   report --run RUN_DIR` then shows the board's numbers beside the host's.

## Engines
| id | model | precision | batch |
|---|---|---|---|
{rows}
"""
