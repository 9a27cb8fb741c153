"""Does a classification model go through the whole toolchain? CoSeP statistics on every channel group,
surgery, plan save/load, ONNX export and ONNX Runtime parity, on a small input with random weights and
synthetic class-structured data (one noisy prototype image per class). Used by the torchvision coverage
test and ``bench/torchvision_coverage.py``; a refused architecture reports its one-line reason."""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from cosep_deploy.errors import CosepError

__all__ = ["CoverageResult", "check_model", "class_structured_batches", "refused_by_class"]


@dataclasses.dataclass(frozen=True)
class CoverageResult:
    name: str
    status: str  # "pass", "refused", "fail"
    reason: str | None = None
    seconds: float = 0.0
    groups: int = 0
    macs_ratio: float | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def class_structured_batches(classes: int, per_class: int, shape: tuple[int, ...], seed: int = 0) -> list[Any]:
    """One batch: ``per_class`` noisy copies of a random prototype image per class (labels 0..classes-1)."""
    g = torch.Generator().manual_seed(seed)
    protos = torch.randn(classes, *shape, generator=g)
    xs = torch.cat([protos[c] + 0.5 * torch.randn(per_class, *shape, generator=g) for c in range(classes)])
    return [(xs, torch.arange(classes).repeat_interleave(per_class))]


_REFUSED_MODULES = {  # torchvision builder module -> the class it builds (for models meta cannot build)
    "torchvision.models.vision_transformer": "VisionTransformer",
    "torchvision.models.swin_transformer": "SwinTransformer",
    "torchvision.models.maxvit": "MaxVit",
    "torchvision.models.shufflenetv2": "ShuffleNetV2",
}


def refused_by_class(name: str) -> str | None:
    """The refusal reason of a torchvision model, from its class alone (built on the meta device: no memory,
    no initialisation cost; for the few whose initialisation needs data, from the builder's module)."""
    import torchvision

    from cosep_deploy.prune.support import REFUSED_CLASSES, refusal_reason

    try:
        with torch.device("meta"):
            model = torchvision.models.get_model(name, weights=None, num_classes=4)
    except (NotImplementedError, RuntimeError):
        cls = _REFUSED_MODULES.get(torchvision.models.get_model_builder(name).__module__)
        return None if cls is None else f"{cls}: {REFUSED_CLASSES[cls]}"
    return refusal_reason(model)


def _smallest_input(name: str, size: int, classes: int) -> int:
    """``size``, or the next of 64/96/128/160/224 the model accepts (AlexNet needs 63 px, Inception 75)."""
    from cosep_deploy.models import ModelSpec, build_model

    model = build_model(ModelSpec(name=name, num_classes=classes, in_channels=3, image_size=size), seed=0).eval()
    for s in (size, *[c for c in (64, 96, 128, 160, 224) if c > size]):
        try:
            with torch.no_grad():
                model(torch.zeros(1, 3, s, s))
            return s
        except RuntimeError:
            continue
    return size


def _chain(name: str, image_size: int, classes: int, export: bool, work: Path) -> CoverageResult:
    from cosep_deploy.models import ModelSpec, build_model
    from cosep_deploy.progress import resolve_progress
    from cosep_deploy.prune import PruneConfig, load_pruned, prune, save_pruned
    from cosep_deploy.prune.coupling import CouplingGraph
    from cosep_deploy.prune.group_stats import collect_group_stats

    start, requested = time.perf_counter(), image_size
    image_size = _smallest_input(name, image_size, classes)
    spec = ModelSpec(name=name, num_classes=classes, in_channels=3, image_size=image_size)
    model = build_model(spec, seed=0).eval()
    x = torch.randn(2, 3, image_size, image_size)
    data = class_structured_batches(classes, 4, (3, image_size, image_size))
    cfg = PruneConfig(method="l1", ratio=0.5, images_per_class=4)
    pruned, plan = prune(model, data, example_inputs=x, base_spec=spec.to_json(), config=cfg)
    # CoSeP's statistics and JM distances on every pruned group of the dense model (the k-medoids sweep
    # after them works on a distance matrix, whatever the architecture)
    graph = CouplingGraph(model, x)
    groups = [g for g in graph.groups() if g.root in {d["root"] for d in plan.groups}]
    stats = collect_group_stats(
        model,
        graph,
        groups,
        data,
        PruneConfig(),
        resolve_progress(None),
        num_classes=classes,
        example_inputs=x,
        distances=True,
    )
    missing = [r for r, s in stats.items() if s.distances is None]
    if missing:
        return CoverageResult(name, "fail", f"no profile distances for {missing[:3]}")
    save_pruned(plan, pruned, work / "pruned")
    again, _ = load_pruned(work / "pruned")
    with torch.no_grad():
        if not torch.equal(again(x), pruned(x)):
            return CoverageResult(name, "fail", "the reloaded model's outputs differ")
    if export:
        from cosep_deploy.export.onnx import onnx_from_model

        onnx_from_model(again, x, work / "pruned.onnx")  # raises on an ONNX Runtime mismatch
    seconds = round(time.perf_counter() - start, 2)
    note = None if image_size == requested else f"input {image_size} px (the model needs more than {requested})"
    return CoverageResult(name, "pass", note, seconds, len(plan.groups), round(plan.macs_ratio, 3))


def check_model(
    name: str,
    *,
    image_size: int = 32,
    classes: int = 4,
    export: bool = True,
    workdir: str | os.PathLike[str] | None = None,
) -> CoverageResult:
    """Run the toolchain on torchvision model ``name``; user errors (refusals) become a result, bugs raise."""
    reason = refused_by_class(name)
    if reason is not None:
        return CoverageResult(name, "refused", reason)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        try:
            return _chain(name, image_size, classes, export, Path(tmp))
        except CosepError as exc:
            return CoverageResult(name, "refused", str(exc).splitlines()[0])
