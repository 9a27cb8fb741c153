"""Per-class statistics of chosen layers' outputs, collected with forward hooks in one pass per batch.

A *tap* is the qualified name of a module whose forward OUTPUT is summarised, e.g. ``"layer1.0.bn1"``.
A module called several times per forward pass (torchvision's ResNet blocks reuse one ``relu``) is tapped
at one call with ``"name@i"`` (i-th call, from 0). Which tap stands for a conv layer is
:func:`~cosep_deploy.separability.taps.resolve_taps`'s answer.

Spatial reduction of a [B, N, H, W] output: ``gap`` (mean over positions: [B, N]), ``pool:S`` (adaptive
average pool to S x S: [B, N, S*S]) or ``pixel`` (every position: [B, N, H*W], the paper). Linear outputs
[B, N] are used as they are in every mode; a Linear applied to channels-last features ([B, H, W, N], as
in ConvNeXt) has its last axis taken as the channel axis.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cosep_deploy.errors import ConfigError, DataError, SeparabilityError, unknown_name
from cosep_deploy.separability.stats import ClassStats, as_labels
from cosep_deploy.separability.taps import module_names

__all__ = ["SPATIAL_MODES", "collect_class_stats", "parse_spatial"]

SPATIAL_MODES = ("gap", "pool:S", "pixel")


def parse_spatial(spec: str) -> tuple[str, int]:
    """``"gap"`` -> ("gap", 1); ``"pool:S"`` -> ("pool", S); ``"pixel"`` -> ("pixel", 0)."""
    if spec in ("gap", "pixel"):
        return spec, 1 if spec == "gap" else 0
    if isinstance(spec, str) and spec.startswith("pool:"):
        size = spec[5:]
        if size.isdigit() and int(size) >= 1:
            return "pool", int(size)
        raise ConfigError(f"spatial {spec!r}: S in 'pool:S' must be a positive integer, e.g. 'pool:2'")
    raise ConfigError(unknown_name("spatial mode", str(spec), SPATIAL_MODES))


def _reduce(out: torch.Tensor, mode: str, size: int) -> torch.Tensor:
    """[B, N, *spatial] -> [B, N] (gap) or [B, N, P]; [B, N] stays [B, N]."""
    if out.ndim == 2:
        return out
    if mode == "gap":
        return out.mean(dim=tuple(range(2, out.ndim)))
    if mode == "pixel":
        return out.flatten(2)
    pools = {3: F.adaptive_avg_pool1d, 4: F.adaptive_avg_pool2d, 5: F.adaptive_avg_pool3d}
    return pools[out.ndim](out, size).flatten(2)


def _split_tap(tap: str) -> tuple[str, int | None]:
    name, sep, call = tap.rpartition("@")
    if not sep:
        return tap, None
    if not call.isdigit():
        raise SeparabilityError(f"tap {tap!r}: the part after '@' must be a call index (0, 1, ...)")
    return name, int(call)


def _tap_plan(
    model: nn.Module, taps: Sequence[str]
) -> tuple[dict[str, nn.Module], dict[str, list[tuple[int | None, str]]]]:
    """Module name -> [(call index or None, tap)] for the given taps (duplicates dropped, names checked)."""
    names = module_names(model)
    plan: dict[str, list[tuple[int | None, str]]] = {}
    for tap in dict.fromkeys(taps):
        mod, call = _split_tap(tap)
        if mod not in names:
            raise SeparabilityError("tap " + unknown_name("module", mod, names))
        plan.setdefault(mod, []).append((call, tap))
    if not plan:
        raise SeparabilityError("no taps given: name at least one module whose output to summarise")
    return names, plan


@dataclasses.dataclass
class _Collector:
    """The per-batch state the hooks share: call counters, finiteness flags and the batch's labels."""

    stats: dict[str, ClassStats]
    mode: str
    size: int
    calls: dict[str, int] = dataclasses.field(default_factory=dict)
    flags: list[tuple[str, torch.Tensor]] = dataclasses.field(default_factory=list)
    labels: torch.Tensor | None = None

    def hook(self, mod_name: str, entries: list[tuple[int | None, str]]) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            i = self.calls.get(mod_name, 0)
            self.calls[mod_name] = i + 1
            for call, tap in entries:
                if call is None and i > 0:
                    raise SeparabilityError(
                        f"module {mod_name!r} runs more than once per forward pass (shared module); tap one "
                        f"call with '{mod_name}@0', '{mod_name}@1', ... (resolve_taps does this)"
                    )
                if (call or 0) == i:
                    self.add(module, tap, output)

        return hook

    def add(self, module: nn.Module, tap: str, output: Any) -> None:
        if not isinstance(output, torch.Tensor):
            raise SeparabilityError(f"tap {tap!r}: module output is {type(output).__name__}, not a tensor")
        if output.ndim < 2:
            raise SeparabilityError(f"tap {tap!r}: output shape {list(output.shape)} has no channel axis")
        out = output.detach()
        if isinstance(module, nn.Linear) and out.ndim > 2:
            out = out.movedim(-1, 1)  # a Linear on channels-last features (ConvNeXt): features are last
        x = _reduce(out, self.mode, self.size)
        self.flags.append((tap, torch.isfinite(x).all()))
        assert self.labels is not None
        self.stats[tap]._accumulate(x, self.labels.to(x.device))

    def start(self, labels: torch.Tensor) -> None:
        self.labels = labels
        self.calls.clear()
        self.flags.clear()

    def check_finite(self, batch: int) -> None:
        """One device-to-host sync per batch for all taps."""
        if not self.flags:
            return
        home = self.flags[0][1].device
        ok = torch.stack([f.to(home) for _, f in self.flags]).cpu().tolist()
        bad = [tap for (tap, _), good in zip(self.flags, ok, strict=True) if not good]
        if bad:
            raise DataError(
                f"non-finite activations (NaN or inf) at layer {bad[0]!r} in batch {batch}: check "
                "the inputs, the weights and the precision (fp16 overflow)"
                + (f"; also at {bad[1:]}" if len(bad) > 1 else "")
            )


def _batch_labels(
    batch: Any, done: int, device: torch.device, num_classes: int | None
) -> tuple[Any, torch.Tensor, int]:
    """(images on ``device``, labels, largest label or -1 when empty) of one loader batch, the labels
    checked against ``num_classes``."""
    if not isinstance(batch, list | tuple) or len(batch) < 2:
        raise DataError("the loader must yield (images, labels) pairs")
    images, labels = batch[0], batch[1]
    if isinstance(images, torch.Tensor):
        images = images.to(device, non_blocking=True)
    n = images.shape[0] if isinstance(images, torch.Tensor) else len(labels)
    lab = as_labels(labels, n, device)
    if lab.numel() == 0:
        return images, lab, -1
    lo, hi = (int(v) for v in torch.stack([lab.min(), lab.max()]).cpu())
    if lo < 0 or (num_classes is not None and hi >= num_classes):
        top = num_classes if num_classes is not None else "inf"
        raise DataError(f"batch {done}: class labels span [{lo}, {hi}], outside [0, {top}); check num_classes")
    return images, lab, hi


def _loader_length(loader: Iterable[Any], max_batches: int | None) -> int | None:
    total = len(loader) if hasattr(loader, "__len__") else None  # type: ignore[arg-type]
    if total is not None and max_batches is not None:
        total = min(total, max_batches)
    return total


def collect_class_stats(
    model: nn.Module,
    loader: Iterable[Any],
    taps: Sequence[str],
    *,
    spatial: str = "gap",
    max_batches: int | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    num_classes: int | None = None,
) -> dict[str, ClassStats]:
    """Run ``model`` (eval mode, no grad) over ``loader`` and summarise every tap's output per class.

    ``loader`` yields ``(images, labels)``; images are moved to the model's device. One forward pass per
    batch feeds every tap; float64 sums accumulate on the activations' device with ``index_add_``.
    ``num_classes`` fixes C (default: largest label + 1). Hooks are removed and the modules' train/eval
    flags restored in ``finally``; nothing is stored on the model. NaN/inf activations raise
    :class:`DataError` naming the layer and batch (one device sync per batch checks all taps).
    """
    mode, size = parse_spatial(spatial)
    if max_batches is not None and max_batches < 1:
        raise ConfigError(f"max_batches must be >= 1 or None, got {max_batches}")
    names, plan = _tap_plan(model, taps)
    stats = {tap: ClassStats(num_classes, name=tap) for entries in plan.values() for _, tap in entries}
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    collector = _Collector(stats, mode, size)
    total = _loader_length(loader, max_batches)
    modes = {m: m.training for m in model.modules()}
    handles = [names[m].register_forward_hook(collector.hook(m, e)) for m, e in plan.items()]
    done = 0
    try:
        model.eval()
        with torch.no_grad():
            for batch in loader:
                if max_batches is not None and done >= max_batches:
                    break
                images, lab, hi = _batch_labels(batch, done, device, num_classes)
                if hi < 0:
                    continue  # an empty batch adds nothing (and has no min/max label)
                for st in stats.values():
                    st._grow(hi + 1)
                collector.start(lab)
                model(images)
                collector.check_finite(done)
                done += 1
                if progress is not None:
                    progress(done, total)
    finally:
        for h in handles:
            h.remove()
        for m, training in modes.items():
            m.training = training
    if done == 0:
        raise DataError("the loader yielded no batches: nothing to collect statistics from")
    _check_all_seen(stats)
    return stats


def _check_all_seen(stats: dict[str, ClassStats]) -> None:
    for tap, st in stats.items():
        if st.shape is None:
            raise SeparabilityError(
                f"tap {tap!r} never produced an output: the module is not called in forward, or is called "
                "fewer times than its '@i' index"
            )
