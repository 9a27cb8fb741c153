"""Deploy bundles: everything a Jetson board needs to build and benchmark engines by itself.

TensorRT engines cannot be built on an x86 host for a Jetson: they are tied to the board's GPU and TensorRT
release. So the host exports ONNX files (precision already decided) and packs them with the target profile
and a ``build_and_bench.sh`` script. On the board the script finds trtexec, reads its version, picks the flag
set for that version (prepared here by :func:`~cosep_deploy.backends.trtexec.command.trtexec_command`, so the flags
have one source), builds one engine per variant and batch size, benchmarks it, and writes the
``--exportTimes/--exportProfile/--exportLayerInfo`` JSON files and a manifest per engine. Copy ``results/``
and ``engines/*.manifest.json`` back and the report reads them.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cosep_deploy._version import __version__
from cosep_deploy.artifacts import sha256_file, staged_dir, write_json
from cosep_deploy.backends.tensorrt.build import summarize_onnx
from cosep_deploy.backends.trtexec.command import TrtexecConfig, trtexec_command
from cosep_deploy.backends.trtexec.parse import TrtexecVersion
from cosep_deploy.engines.manifest import EngineManifest, utc_now
from cosep_deploy.errors import ConfigError, unknown_name
from cosep_deploy.targets import TargetProfile

__all__ = ["FAMILIES", "jetson_bundle_from_onnx"]

# trtexec flag families: 11.x (strongly typed only, new defaults), 10.x with --stronglyTyped, and the
# weakly typed 8.x path (--fp16/--int8). The version passed to trtexec_command is each family's oldest.
FAMILIES: dict[str, tuple[TrtexecVersion, bool]] = {
    "strict": (TrtexecVersion(11, 0, 0), True),
    "typed": (TrtexecVersion(10, 0, 0), True),
    "weak": (TrtexecVersion(8, 5, 0), False),
}
_FILL_ON_BOARD = (
    "engine_sha256",
    "engine_bytes",
    "runtime_version",
    "device_name",
    "compute_capability",
    "build_seconds",
    "created",
)


def jetson_bundle_from_onnx(
    onnx_files: Mapping[str, str | os.PathLike[str]],
    target: TargetProfile,
    out_dir: str | os.PathLike[str],
    *,
    model_name: str,
    batch_sizes: Sequence[int] = (1, 8, 40),
    duration_s: float = 10.0,
    warmup_ms: float = 1000.0,
    overwrite: bool = False,
) -> Path:
    """Write a self-contained bundle directory ``out_dir`` for building ``onnx_files`` ({precision: path})
    on a ``target`` board; returns ``out_dir``. Written whole or not at all."""
    if target.backend != "tensorrt":
        raise ConfigError(f"target {target.name!r} runs {target.backend}, there is no engine to build on a board")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", model_name):
        raise ConfigError(f"model_name {model_name!r} must be letters, digits, '.', '_' or '-' (it names files)")
    sizes = sorted(set(batch_sizes))
    if not sizes or any(not isinstance(b, int) or b < 1 for b in sizes):
        raise ConfigError(f"batch_sizes must be positive integers, found {list(batch_sizes)}")
    if not onnx_files:
        raise ConfigError("no ONNX files given (expected {precision: path})")
    engines: list[dict[str, Any]] = []
    sources: dict[str, Path] = {}
    for precision, path in onnx_files.items():
        if precision not in target.precisions:
            raise ConfigError(unknown_name(f"precision for target {target.name!r}", precision, target.precisions))
        src = Path(path)
        if not src.is_file():
            raise ConfigError(f"ONNX file for {precision} not found: {src}")
        onnx_name = f"{model_name}.{precision}.onnx"
        sources[onnx_name] = src
        engines += _engine_entries(src, onnx_name, precision, sizes, target, model_name, duration_s, warmup_ms)
    template = {
        "schema": "engine_manifest_template",
        "schema_version": 1,
        "model_name": model_name,
        "target": target.name,
        "tensorrt_range": target.tensorrt,
        "generated_by": f"cosep-deploy {__version__}",
        "created": utc_now(),
        "fill_on_board": list(_FILL_ON_BOARD),
        "engines": engines,
    }
    with staged_dir(out_dir, overwrite=overwrite) as tmp:
        (tmp / "onnx").mkdir()
        for name, src in sources.items():
            shutil.copyfile(src, tmp / "onnx" / name)
        (tmp / "target.toml").write_text(target.to_toml(), encoding="utf-8")
        write_json(tmp / "manifest.template.json", template)
        script = tmp / "build_and_bench.sh"
        script.write_text(_script(target, engines), encoding="utf-8")
        script.chmod(0o755)
        (tmp / "fill_manifest.py").write_text(_FILL_MANIFEST, encoding="utf-8")
        (tmp / "README.md").write_text(_readme(target, model_name, Path(out_dir).name, engines), encoding="utf-8")
    return Path(out_dir)


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
    onnx_name: str,
    precision: str,
    sizes: list[int],
    target: TargetProfile,
    model_name: str,
    duration_s: float,
    warmup_ms: float,
) -> list[dict[str, Any]]:
    summary = summarize_onnx(src)
    if precision == "int8" and not summary.has_qdq:
        raise ConfigError(f"{src}: the int8 variant needs Q/DQ nodes (post-training quantization); this ONNX has none")
    if precision == "fp16" and not summary.has_fp16:
        raise ConfigError(
            f"{src}: the fp16 variant must be a mixed-precision ONNX (TensorRT 10/11 take the "
            "precision from the file); this one is all fp32"
        )
    dla_core = 0 if target.dla.use_dla else None
    onnx_sha = sha256_file(src)
    out = []
    for batch in sizes:
        ident = f"{model_name}.{precision}.b{batch}"
        shapes = _batch_shapes(summary.inputs, batch, src)
        results = {k: f"results/{ident}.{k}.json" for k in ("times", "profile", "layers")}
        base: dict[str, Any] = dict(
            onnx=Path("onnx") / onnx_name,
            save_engine=Path("engines") / f"{ident}.engine",
            precision=precision,
            min_shapes=shapes or None,
            opt_shapes=shapes or None,
            max_shapes=shapes or None,
            shapes=shapes or None,
            workspace_mib=target.workspace_mib,
            timing_cache=Path("engines") / "timing.cache",
            dla_core=dla_core,
            gpu_fallback=target.dla.gpu_fallback,
            duration_s=duration_s,
            warmup_ms=warmup_ms,
            export_times=Path(results["times"]),
            export_profile=Path(results["profile"]),
            export_layer_info=Path(results["layers"]),
        )
        commands = {
            family: trtexec_command(TrtexecConfig(**base, strongly_typed=typed), version=version)[1:]
            for family, (version, typed) in FAMILIES.items()
        }
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
            build_options={"batch": batch, "shapes": {k: list(v) for k, v in shapes.items()}},
        ).to_json()
        manifest.update(dict.fromkeys(_FILL_ON_BOARD))
        out.append(
            {
                "id": ident,
                "precision": precision,
                "batch": batch,
                "log": f"results/{ident}.log",
                "results": results,
                "commands": commands,
                "manifest": manifest,
            }
        )
    return out


def _script(target: TargetProfile, engines: list[dict[str, Any]]) -> str:
    blocks = []
    for e in engines:
        cases = "\n".join(f"    {fam}) args=({shlex.join(cmd)}) ;;" for fam, cmd in e["commands"].items())
        blocks.append(f'case "$FAMILY" in\n{cases}\nesac\nrun_one {shlex.quote(e["id"])} "${{args[@]}}"\n')
    return (
        _SCRIPT_HEAD.replace("@TARGET@", target.name).replace("@RANGE@", target.tensorrt or "any")
        + "\n".join(blocks)
        + _SCRIPT_TAIL
    )


_SCRIPT_HEAD = r"""#!/usr/bin/env bash
# Build and benchmark TensorRT engines for target @TARGET@ on the board itself (generated by cosep-deploy).
# Usage: ./build_and_bench.sh        (env: TRTEXEC=/path/to/trtexec, PYTHON=python3)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"
mkdir -p results engines

TRTEXEC="${TRTEXEC:-}"
if [[ -z "$TRTEXEC" ]]; then
  if [[ -x /usr/src/tensorrt/bin/trtexec ]]; then
    TRTEXEC=/usr/src/tensorrt/bin/trtexec
  elif command -v trtexec >/dev/null 2>&1; then
    TRTEXEC="$(command -v trtexec)"
  else
    echo "error: trtexec not found at /usr/src/tensorrt/bin/trtexec or on PATH (it ships with JetPack:" \
         "apt install tensorrt); or set TRTEXEC=/path/to/trtexec" >&2
    exit 1
  fi
fi
PYTHON="${PYTHON:-python3}"

# TensorRT version from trtexec's banner "[TensorRT v100300]" (8.x packs it as v8601)
HELP="$("$TRTEXEC" --help 2>&1 || true)"
if [[ ! $HELP =~ \[TensorRT\ v([0-9]+)\] ]]; then
  echo "error: cannot read the TensorRT version from '$TRTEXEC --help'" >&2
  exit 1
fi
NUM=$((10#${BASH_REMATCH[1]}))
if (( NUM < 10000 )); then
  MAJOR=$((NUM / 1000)); MINOR=$(((NUM / 100) % 10)); PATCH=$((NUM % 100))
else
  MAJOR=$((NUM / 10000)); MINOR=$(((NUM / 100) % 100)); PATCH=$((NUM % 100))
fi
TRT_VERSION="$MAJOR.$MINOR.$PATCH"
# strict: 11.x, precision only from the ONNX, CUDA graphs/spin-wait/no copies by default
# typed: 10.x with --stronglyTyped (precision from the ONNX), 11.x measurement defaults spelled out
# weak: older trtexec without --stronglyTyped: --fp16/--int8 flags (int8 from the ONNX's Q/DQ nodes)
if (( MAJOR >= 11 )); then
  FAMILY=strict
elif [[ $HELP == *--stronglyTyped* ]]; then
  FAMILY=typed
else
  FAMILY=weak
fi
echo "trtexec: $TRTEXEC (TensorRT $TRT_VERSION, flag family: $FAMILY; target @TARGET@ expects TensorRT @RANGE@)"

# the environment the numbers were taken in: power mode and clocks matter as much as the model
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "uname: $(uname -a)"
  echo "trtexec: $TRTEXEC"
  echo "tensorrt: $TRT_VERSION"
  echo "family: $FAMILY"
  if [[ -r /etc/nv_tegra_release ]]; then echo "l4t: $(head -n 1 /etc/nv_tegra_release)"; fi
  if [[ -r /proc/device-tree/model ]]; then echo "model: $(tr -d '\0' < /proc/device-tree/model)"; fi
} > results/environment.txt
if command -v nvpmodel >/dev/null 2>&1; then
  nvpmodel -q > results/nvpmodel.txt 2>&1 || true
fi
if command -v jetson_clocks >/dev/null 2>&1; then
  jetson_clocks --show > results/jetson_clocks.txt 2>&1 || sudo -n jetson_clocks --show \
    > results/jetson_clocks.txt 2>&1 || echo "jetson_clocks --show needs root; clocks not recorded" >&2
fi

FAILED=()
run_one() {
  local id="$1"
  shift
  local log="results/$id.log"
  echo "[$id] building and benchmarking (log: $log)"
  if ! "$TRTEXEC" "$@" > "$log" 2>&1; then
    echo "[$id] trtexec failed; last lines of $log:" >&2
    tail -n 20 "$log" >&2 || true
    FAILED+=("$id")
    return 0
  fi
  grep -E "Throughput:|GPU Compute Time: min" "$log" | sed "s/^/[$id] /" || true
  if command -v "$PYTHON" >/dev/null 2>&1; then
    "$PYTHON" fill_manifest.py --id "$id" --log "$log" --version "$TRT_VERSION" --family "$FAMILY"
  else
    echo "[$id] $PYTHON not found: engine manifest not written" >&2
  fi
}

"""

_SCRIPT_TAIL = r"""
if (( ${#FAILED[@]} > 0 )); then
  echo "failed: ${FAILED[*]}" >&2
  exit 1
fi
echo "done: copy results/ and engines/*.manifest.json back to the host"
"""

# Runs on the board with only the standard library (JetPack 5 has Python 3.8): writes the EngineManifest
# JSON (schema engine_manifest v1) for one engine from the template and trtexec's log.
_FILL_MANIFEST = r'''"""Fill engines/<id>.manifest.json for one engine built by build_and_bench.sh (stdlib only)."""
import argparse
import datetime
import hashlib
import json
import os
import re


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def find(pattern, text):
    m = re.search(pattern, text, re.M)
    return m.group(1).strip() if m else None


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    for flag in ("--id", "--log", "--version", "--family"):
        ap.add_argument(flag, required=True)
    args = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "manifest.template.json")) as fh:
        template = json.load(fh)
    entry = [e for e in template["engines"] if e["id"] == args.id][0]
    with open(args.log, errors="replace") as fh:
        log = fh.read()
    engine = os.path.join(here, "engines", entry["manifest"]["engine_file"])
    manifest = dict(entry["manifest"])
    built = find(r"Engine built in ([0-9.]+) sec", log)
    manifest.update(
        engine_sha256=sha256(engine),
        engine_bytes=os.path.getsize(engine),
        runtime_version=args.version,
        device_name=find(r"Selected Device:\s*(.+)$", log) or "unknown",
        compute_capability=find(r"Compute Capability:\s*([0-9]+\.[0-9]+)", log) or "unknown",
        build_seconds=float(built) if built else 0.0,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )
    manifest["build_options"] = dict(manifest["build_options"], family=args.family,
                                     trtexec_args=entry["commands"][args.family])
    out = os.path.join(here, "engines", args.id + ".manifest.json")
    with open(out + ".tmp", "w") as fh:
        json.dump(manifest, fh, indent=2)
    os.replace(out + ".tmp", out)


if __name__ == "__main__":
    main()
'''


def _readme(target: TargetProfile, model_name: str, bundle: str, engines: list[dict[str, Any]]) -> str:
    rows = "\n".join(f"| `{e['id']}` | {e['precision']} | {e['batch']} | `engines/{e['id']}.engine` |" for e in engines)
    return f"""# Deploy bundle: {model_name} for {target.name}

{target.description}. TensorRT {target.tensorrt}, JetPack {target.jetpack or "-"}.
Generated by cosep-deploy {__version__}. TensorRT engines must be built on the device that runs them, so this
folder holds the ONNX files (precision already inside them) and a script that builds and benchmarks there.

## On the board
1. Copy this folder to the board: `scp -r {bundle} user@board:` (any copy will do).
2. Lock the clocks for stable numbers: `sudo nvpmodel -m 0 && sudo jetson_clocks` (the script records
   `nvpmodel -q` and `jetson_clocks --show` but changes nothing).
3. Run `./build_and_bench.sh`. It finds trtexec (`/usr/src/tensorrt/bin/trtexec` or `PATH`; override with
   `TRTEXEC=...`), reads the TensorRT version from its banner and uses that version's flags: nothing for
   precision on 11.x, `--stronglyTyped` plus `--useCudaGraph --noDataTransfers --useSpinWait` on 10.x (11.x's
   defaults), `--fp16`/`--int8` on 8.x. One engine per variant and batch size (static shapes: every batch size
   gets kernels tuned for it), sharing `engines/timing.cache`.
4. Bring back `results/` and `engines/*.manifest.json` (the engines themselves only run on this board).
   `cosep-deploy report` reads them: `*.times.json` (per-iteration times), `*.profile.json` (per-layer
   times), `*.layers.json` (layer formats: look for reformat layers), `*.log` (trtexec's summary).

If cosep-deploy is installed on the board, `cosep-deploy build` can build from the same ONNX files through the
TensorRT Python API instead (it writes the same kind of manifest).

## Engines
| id | precision | batch | engine |
|---|---|---|---|
{rows}

`target.toml` is the target profile; `manifest.template.json` lists every engine, its trtexec arguments per
TensorRT flag family and the manifest fields filled on the board ({", ".join(_FILL_ON_BOARD)}).
"""
