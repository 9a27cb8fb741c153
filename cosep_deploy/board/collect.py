"""Bring a board's results back into the run directory, checked against the bundle they came from.

A bundle run on a board leaves ``results/board.json`` (timings, speed-ups, power mode, clocks, tegrastats)
and ``engines/<id>.manifest.json``. :func:`collect_board_results` refuses results that do not belong to the
bundle (another bundle id, an ONNX file changed, a manifest for another ONNX or target, a manifest the board
left unfilled) or a bundle that was not written from this run's ONNX files, then copies them to
``RUN/board/<target>/``. :func:`board_report_lines` renders them beside the host's numbers for ``report``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from cosep_deploy.artifacts import read_json, sha256_file, staged_dir, write_json
from cosep_deploy.errors import ConfigError

__all__ = ["board_report_lines", "collect_board_results"]


def _run_onnx(run: Path, model: str, precision: str) -> Path:
    return run / "onnx" / (f"{model}.onnx" if precision == "fp32" else f"{model}.{precision}.onnx")


def _check_manifest(bundle: Path, plan: dict[str, Any], engine: dict[str, Any]) -> dict[str, Any]:
    from cosep_deploy.engines.manifest import EngineManifest

    path = bundle / "engines" / f"{engine['id']}.manifest.json"
    raw = read_json(path, what="engine manifest")
    missing = [k for k in plan["fill_on_board"] if raw.get(k) in (None, "")]
    if missing:
        raise ConfigError(f"{path}: fields the board did not fill: {', '.join(missing)}")
    manifest = EngineManifest.from_json(raw)
    expected = engine["manifest"]
    if (manifest.onnx_sha256, manifest.target, manifest.precision) != (
        expected["onnx_sha256"],
        expected["target"],
        expected["precision"],
    ):
        raise ConfigError(f"{path} describes another engine than {engine['id']} of this bundle")
    return raw


def collect_board_results(run: str | os.PathLike[str], bundle_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Validate ``bundle_dir``'s results against its ``bundle.json`` and the run's ONNX files, and copy them to
    ``RUN/board/<target>/``; returns the collected summary (also written as ``collected.json`` there)."""
    root, bundle = Path(run), Path(bundle_dir)
    plan = read_json(bundle / "bundle.json", what="bundle plan")
    if plan.get("schema") != "jetson_bundle":
        raise ConfigError(f"{bundle} is not a cosep-deploy Jetson bundle (bundle.json schema {plan.get('schema')!r})")
    results_file = bundle / "results" / "board.json"
    if not results_file.is_file():
        raise ConfigError(f"{results_file} not found: run ./build_and_bench.sh on the board and copy the folder back")
    result = read_json(results_file, what="board results")
    if result.get("bundle_id") != plan["bundle_id"]:
        raise ConfigError(
            f"{results_file} comes from bundle {result.get('bundle_id')!r}, not from this bundle ({plan['bundle_id']})"
        )
    for rel, digest in plan["onnx"].items():
        if not (bundle / rel).is_file() or sha256_file(bundle / rel) != digest:
            raise ConfigError(f"{bundle / rel} changed since the bundle was written: its results cannot be trusted")
    for engine in plan["engines"]:
        source = _run_onnx(root, engine["model"], engine["precision"])
        if not source.is_file() or sha256_file(source) != engine["manifest"]["onnx_sha256"]:
            raise ConfigError(
                f"the bundle's {engine['onnx']} is not this run's {source}: collect into the run the bundle was "
                "written from"
            )
    not_built = set(result.get("failed", [])) | set(result.get("skipped", {}))
    built = [e for e in plan["engines"] if e["id"] not in not_built]
    manifests = {e["id"]: _check_manifest(bundle, plan, e) for e in built}
    target = plan["target"]["name"]
    summary = {
        "bundle": str(bundle),
        "bundle_id": plan["bundle_id"],
        "target": target,
        "tensorrt_version": result["tensorrt_version"],
        "engines": sorted(manifests),
        "failed": result.get("failed", []),
        "skipped": result.get("skipped", {}),
        "pairs": len(result.get("pairs", [])),
    }
    with staged_dir(root / "board" / target, overwrite=True) as tmp:
        write_json(tmp / "board.json", result)
        write_json(tmp / "bundle.json", plan)
        (tmp / "engines").mkdir()
        for ident, raw in manifests.items():
            write_json(tmp / "engines" / f"{ident}.manifest.json", raw)
        for pattern in ("*.profile.json", "*.layers.json"):
            for path in (bundle / "results").glob(pattern):
                (tmp / "results").mkdir(exist_ok=True)
                shutil.copyfile(path, tmp / "results" / path.name)
        write_json(tmp / "collected.json", summary)
    return summary


def _host_speedups(root: Path) -> tuple[dict[str, Any], str]:
    """The host's pruned-over-dense speed-up per batch from ``bench/bench.json``, and its precision."""
    path = root / "bench" / "bench.json"
    if not path.is_file():
        return {}, ""
    data = read_json(path, what="bench results")
    return dict(data.get("speedups", {}).get("pruned", {})), str(data.get("settings", {}).get("precision", ""))


def board_report_lines(run: str | os.PathLike[str]) -> list[str]:
    """Markdown: per collected target, the board's speed-up per precision and batch beside the host's."""
    root = Path(run)
    folders = sorted(p for p in (root / "board").glob("*") if (p / "board.json").is_file())
    if not folders:
        return []
    host_by_batch, host_precision = _host_speedups(root)
    lines = ["## On the board", ""]
    for folder in folders:
        result = read_json(folder / "board.json", what="board results")
        board = result.get("board", {})
        power = board.get("power", {})
        tegra = result.get("tegrastats", {}).get("summary", {})
        watts = (tegra.get("total_power_mw") or {}).get("mean")
        lines += [
            f"### {result['target']}: {board.get('model') or 'unknown board'}, TensorRT {result['tensorrt_version']}",
            "",
            f"Power mode {power.get('mode')} (maximum: {power.get('at_max')}); clocks {board.get('clocks_key')}"
            f"{' (changed during the run)' if result.get('clocks_changed') else ''}; mean power during timing "
            f"{f'{watts / 1000:.1f} W' if watts else 'not recorded'}; {result['rounds']} interleaved rounds.",
            "",
            f"| precision | batch | dense ms (board) | pruned ms (board) | speed-up (board) | speed-up (host"
            f"{', ' + host_precision if host_precision else ''}) |",
            "|---|---|---|---|---|---|",
        ]
        for pair in result.get("pairs", []):
            s = pair["speedup"]
            h = host_by_batch.get(str(pair["batch"]))
            host_cell = f"{h['speedup']:.2f}x [{h['ci_low']:.2f}, {h['ci_high']:.2f}]" if h else "-"
            lines.append(
                f"| {pair['precision']} | {pair['batch']} | {pair['dense_ms']['median']:.4f} | "
                f"{pair['pruned_ms']['median']:.4f} | {s['speedup']:.2f}x [{s['ci_low']:.2f}, {s['ci_high']:.2f}] | "
                f"{host_cell} |"
            )
        lines.append("")
    return lines
