"""The provenance chain of a run: dense weights -> plan -> fine-tuned weights -> ONNX -> engines -> bench.

Every artifact records the sha256 of the artifacts it came from; every command checks the links it reads
and refuses a mixed or stale chain with a :class:`~cosep_deploy.errors.StaleArtifactError` that names the
command to re-run. So a ResNet-56 dense model is never benchmarked against a plan made from ResNet-20, and
a re-run ``prune`` without ``finetune`` never exports the old fine-tuned weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cosep_deploy.artifacts import read_json, sha256_file
from cosep_deploy.errors import ArtifactError, StaleArtifactError
from cosep_deploy.pipeline.layout import RunLayout

__all__ = [
    "SOURCES_FILE",
    "bench_sources",
    "check_bench",
    "check_engines",
    "check_onnx",
    "check_onnx_files",
    "check_plan",
    "dense_sha",
    "engine_sources",
    "final_pruned_dir",
    "onnx_sources",
]

SOURCES_FILE = "sources.json"  # in onnx/: which dense and pruned weights the ONNX files were exported from


def _rerun(layout: RunLayout, command: str, extra: str = "") -> str:
    import shlex

    return f"`cosep-deploy {command} --run {shlex.quote(str(layout.root))}{extra}`"


def dense_sha(layout: RunLayout) -> str:
    weights = layout.dense / "model.safetensors"
    if not weights.is_file():
        raise ArtifactError(f"no dense model in {layout.root}: run {_rerun(layout, 'train')} first")
    return sha256_file(weights)


def check_plan(layout: RunLayout, plan_dir: Path) -> dict[str, Any]:
    """The plan in ``plan_dir`` was made from the run's current dense weights; returns its JSON."""
    from cosep_deploy.prune.plan import read_plan

    plan = read_plan(plan_dir / "plan.json")
    recorded = plan.data.get("dense_weights_sha256")
    if recorded != dense_sha(layout):
        raise StaleArtifactError(
            f"{plan_dir.name}/plan.json was made from other dense weights than {layout.dense.name}/ holds "
            f"(base model {plan.base_model.get('name', '?')!r}); re-run {_rerun(layout, 'prune')}"
        )
    return {"plan": plan, "weights_sha256": plan.weights_sha256}


def final_pruned_dir(layout: RunLayout) -> tuple[Path, str]:
    """``finetuned/`` if it was fine-tuned from the current ``pruned/``, else ``pruned/``; a stale
    ``finetuned/`` (``prune`` re-ran after it) is refused."""
    if not (layout.pruned / "plan.json").is_file():
        raise ArtifactError(f"no pruned model in {layout.root}: run {_rerun(layout, 'prune')} first")
    pruned = check_plan(layout, layout.pruned)
    if not (layout.finetuned / "plan.json").is_file():
        return layout.pruned, "pruned"
    record = read_json(layout.finetuned / "finetune.json", what="fine-tuning record")
    source = record.get("source") if isinstance(record, dict) else None
    if not isinstance(source, dict) or source.get("pruned_weights_sha256") != pruned["weights_sha256"]:
        raise StaleArtifactError(
            f"finetuned/ was fine-tuned from an older pruned/ (prune ran again after it); re-run "
            f"{_rerun(layout, 'finetune')}"
        )
    check_plan(layout, layout.finetuned)
    return layout.finetuned, "finetuned"


def onnx_sources(layout: RunLayout) -> dict[str, Any]:
    """What ``export`` reads, by hash: the dense weights and the final pruned weights (and their stage)."""
    tuned, stage = final_pruned_dir(layout)
    return {
        "dense_weights_sha256": dense_sha(layout),
        "pruned_weights_sha256": sha256_file(tuned / "weights.safetensors"),
        "pruned_stage": stage,
    }


def _onnx_files(layout: RunLayout) -> dict[str, str]:
    return {p.name: sha256_file(p) for p in sorted(layout.onnx.glob("*.onnx"))}


def check_onnx(layout: RunLayout) -> dict[str, str]:
    """``onnx/`` was exported from the current dense and pruned weights; returns its files' hashes."""
    path = layout.onnx / SOURCES_FILE
    if not path.is_file():
        raise StaleArtifactError(
            f"{layout.onnx} has no record of the models it was exported from; re-run {_rerun(layout, 'export')}"
        )
    recorded = read_json(path, what="ONNX sources record")
    if not isinstance(recorded, dict) or recorded.get("from") != onnx_sources(layout):
        raise StaleArtifactError(
            f"{layout.onnx.name}/ was exported from other weights than the run's dense/pruned models now hold; "
            f"re-run {_rerun(layout, 'export')}"
        )
    files = _onnx_files(layout)
    if recorded.get("files") != files:
        raise StaleArtifactError(
            f"files in {layout.onnx.name}/ changed after export; re-run {_rerun(layout, 'export')}"
        )
    return files


def check_onnx_files(layout: RunLayout, names: list[str]) -> None:
    """The named files in ``onnx/`` are the ones ``export`` wrote (when an export record is there: ONNX files
    put there by hand are profiled as they are, their hashes recorded with the result)."""
    path = layout.onnx / SOURCES_FILE
    if not path.is_file():
        return
    recorded = read_json(path, what="ONNX sources record")
    files = recorded.get("files") if isinstance(recorded, dict) else None
    for name in names:
        if not isinstance(files, dict) or files.get(name) != sha256_file(layout.onnx / name):
            raise StaleArtifactError(f"onnx/{name} changed after export; re-run {_rerun(layout, 'export')}")


def engine_sources(layout: RunLayout) -> dict[str, Any]:
    """What ``build`` reads, by hash, checked: the ONNX files."""
    return {"onnx": check_onnx(layout)}


def check_engines(layout: RunLayout, target: str) -> dict[str, Any]:
    """``engines/<target>/`` was built from the current ONNX files; returns its build record."""
    engines = layout.engines(target)
    extra = f" --target {target}"
    if not (engines / "build.json").is_file():
        raise ArtifactError(f"no {target} engines in {layout.root}: run {_rerun(layout, 'build', extra)} first")
    build = read_json(engines / "build.json", what="build record")
    if not isinstance(build, dict) or build.get("sources") != engine_sources(layout):
        raise StaleArtifactError(
            f"engines/{target}/ were built from other ONNX files than onnx/ holds now; re-run "
            f"{_rerun(layout, 'build', extra)}"
        )
    return build


def bench_sources(layout: RunLayout, target: str) -> dict[str, Any]:
    """What ``bench`` reads, by hash: the target's engine files (whose build is checked first)."""
    check_engines(layout, target)
    engines = layout.engines(target)
    files = {p.name: sha256_file(p) for p in sorted(engines.iterdir()) if p.suffix in (".onnx", ".engine")}
    return {"target": target, "engines": files}


def check_bench(layout: RunLayout, bench: dict[str, Any]) -> None:
    """``bench/bench.json`` timed the engines the run's chain holds now."""
    sources = bench.get("sources")
    target = sources.get("target") if isinstance(sources, dict) else None
    if not isinstance(target, str) or sources != bench_sources(layout, target):
        raise StaleArtifactError(
            f"bench/bench.json timed other engines than the run holds now; re-run {_rerun(layout, 'bench')}"
        )
