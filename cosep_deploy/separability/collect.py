"""Per-class statistics of chosen layers' outputs, collected with forward hooks in one pass per batch.

A *tap* is the qualified name of a module whose forward OUTPUT is summarised, e.g. ``"layer1.0.bn1"``.
A module called several times per forward pass (torchvision's ResNet blocks reuse one ``relu``) is tapped
at one call with ``"name@i"`` (i-th call, from 0). :func:`resolve_taps` maps conv (or linear) layers to
the tap for a hook point: the layer itself, the BatchNorm that directly consumes its output, or the
activation module right after that.

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

__all__ = ["HOOK_POINTS", "SPATIAL_MODES", "TapMap", "collect_class_stats", "parse_spatial", "resolve_taps"]

HOOK_POINTS = ("conv", "bn", "act", "add")
_ADDS = ("add", "iadd", "add_")
SPATIAL_MODES = ("gap", "pool:S", "pixel")
_ACTIVATIONS = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Hardtanh,
    nn.Sigmoid,
    nn.Tanh,
    nn.Softplus,
)


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


def _module_names(model: nn.Module) -> dict[str, nn.Module]:
    return {n: m for n, m in model.named_modules() if n}


def _tap_plan(
    model: nn.Module, taps: Sequence[str]
) -> tuple[dict[str, nn.Module], dict[str, list[tuple[int | None, str]]]]:
    """Module name -> [(call index or None, tap)] for the given taps (duplicates dropped, names checked)."""
    names = _module_names(model)
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


@dataclasses.dataclass(frozen=True)
class _Call:
    module: str | None  # None: a functional op (torch.fx only)
    label: str
    inputs: tuple[Any, ...]
    output: Any


class TapMap(dict[str, str]):
    """conv name -> tap name; ``notes`` explains every fallback (no BN after a conv, functional act...)."""

    def __init__(self, *args: Any, notes: dict[str, str] | None = None, traced_by: str = "", **kw: Any):
        super().__init__(*args, **kw)
        self.notes: dict[str, str] = dict(notes or {})
        self.traced_by = traced_by


def _trace_fx(model: nn.Module) -> list[_Call]:
    gm = torch.fx.symbolic_trace(model)
    out = []
    for node in gm.graph.nodes:
        if node.op in ("placeholder", "output", "get_attr"):
            continue
        args = tuple(a for a in node.all_input_nodes)
        mod = str(node.target) if node.op == "call_module" else None
        label = mod if mod is not None else str(getattr(node.target, "__name__", node.target))
        out.append(_Call(mod, label, args, node))
    return out


def _trace_hooks(model: nn.Module, example_inputs: torch.Tensor) -> list[_Call]:
    """Leaf-module calls in execution order, linked by tensor identity (functional ops are invisible)."""
    calls: list[_Call] = []
    alive: list[Any] = []  # keep traced tensors alive so their ids stay unique during the trace

    def make(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            ins = tuple(id(t) for t in inputs if isinstance(t, torch.Tensor))
            alive.append((inputs, output))
            calls.append(_Call(name, name, ins, id(output)))

        return hook

    leaves = [(n, m) for n, m in model.named_modules() if n and not any(True for _ in m.children())]
    modes = {m: m.training for m in model.modules()}
    handles = [m.register_forward_hook(make(n)) for n, m in leaves]
    try:
        model.eval()
        with torch.no_grad():
            model(example_inputs)
    finally:
        for h in handles:
            h.remove()
        for m, training in modes.items():
            m.training = training
    return calls


class _CallGraph:
    """Traced calls in execution order, with each module call's tap name and each call's consumers."""

    def __init__(self, calls: list[_Call], names: dict[str, nn.Module], traced_by: str) -> None:
        self.calls, self.names, self.traced_by = calls, names, traced_by
        self.count: dict[str, int] = {}
        self.index: dict[int, int] = {}
        for pos, call in enumerate(calls):
            if call.module is not None:
                self.index[pos] = self.count.get(call.module, 0)
                self.count[call.module] = self.index[pos] + 1

    def tap(self, pos: int) -> str:
        mod = self.calls[pos].module
        assert mod is not None
        return mod if self.count[mod] == 1 else f"{mod}@{self.index[pos]}"

    def users(self, pos: int) -> list[int]:
        return [q for q in range(pos + 1, len(self.calls)) if self.calls[pos].output in self.calls[q].inputs]

    def consumer(self, pos: int, kinds: tuple[type[nn.Module], ...]) -> tuple[int | None, list[str]]:
        """The first module of one of ``kinds`` that consumes call ``pos``'s output (or the consumers' labels)."""
        users = self.users(pos)
        for q in users:
            mod = self.calls[q].module
            if mod is not None and isinstance(self.names.get(mod), kinds):
                return q, []
        return None, [self.calls[q].label for q in users]


def _trace(model: nn.Module, example_inputs: torch.Tensor | None) -> tuple[list[_Call], str]:
    try:
        return _trace_fx(model), "torch.fx"
    except Exception as exc:  # fx fails on data-dependent control flow and many custom ops
        if example_inputs is None:
            raise SeparabilityError(
                f"resolve_taps: torch.fx cannot trace {type(model).__name__} ({type(exc).__name__}: {exc}); "
                "pass example_inputs=<one input batch> to trace a forward pass with hooks instead"
            ) from exc
        return _trace_hooks(model, example_inputs), "hooks"


def _after_add(graph: _CallGraph, at: int, result: TapMap, c: str) -> int:
    """The residual stream after the add that ``calls[at]`` feeds: the activation module applied to the sum
    (the add itself is a function, which hooks cannot see). Unchanged, with a note, when no add follows."""
    calls = graph.calls
    add = next((q for q in graph.users(at) if calls[q].module is None and calls[q].label in _ADDS), None)
    if add is None:
        return at  # not a residual member: as "bn"
    act, _ = graph.consumer(add, _ACTIVATIONS)
    if act is None:
        result.notes[c] = (
            f"no activation module follows the add after {graph.tap(at)}; hooking {graph.tap(at)} (before the add)"
        )
        return at
    return int(act)


def _note(result: TapMap, c: str, text: str) -> None:
    result.notes[c] = (result.notes[c] + "; " if c in result.notes else "") + text


def _resolve_one(graph: _CallGraph, c: str, point: str, result: TapMap) -> str:
    """The tap of layer ``c`` for ``point`` ("bn", "act" or "add"), noting every fallback in ``result``."""
    first = next((p for p, call in enumerate(graph.calls) if call.module == c), None)
    if first is None:
        result.notes[c] = f"{c} is not called in a forward pass ({graph.traced_by}); hooking it as is"
        return c
    at = first
    bn, users = graph.consumer(first, (nn.modules.batchnorm._BatchNorm,))
    if bn is None:
        result.notes[c] = f"no BatchNorm directly consumes {c} (consumers: {users or 'none'}); hooking {c}"
    else:
        at = bn
    if point == "add":
        at = _after_add(graph, at, result, c)
    if point == "act":
        act, users = graph.consumer(at, _ACTIVATIONS)
        if act is None:
            _note(
                result,
                c,
                f"no activation module follows {graph.tap(at)} (consumers: {users or 'none'}; a functional "
                f"activation cannot be hooked); hooking {graph.tap(at)}",
            )
        else:
            at = act
    return graph.tap(at)


def resolve_taps(
    model: nn.Module,
    conv_names: Sequence[str],
    point: str = "bn",
    *,
    example_inputs: torch.Tensor | None = None,
) -> TapMap:
    """For each conv/linear layer, the module to hook for ``point`` ("conv", "bn", "act" or "add").

    The consumer graph comes from torch.fx when the model traces symbolically, otherwise from one forward
    pass on ``example_inputs`` with hooks recording module calls. "bn" is the BatchNorm that directly
    consumes the layer's output; "act" the activation module right after that BN (or after the layer when
    no BN follows). "add" hooks the members of residual groups after the add (the activation module applied
    to the sum; torch.fx only, since hooks cannot see a functional add) and every other layer as "bn".
    Where the wanted module is missing the tap falls back one step (act -> bn -> conv) and
    ``TapMap.notes[conv]`` says why.
    """
    if point not in HOOK_POINTS:
        raise ConfigError(unknown_name("hook point", str(point), HOOK_POINTS))
    names = _module_names(model)
    for c in conv_names:
        if c not in names:
            raise SeparabilityError("resolve_taps: " + unknown_name("layer", c, names))
    if point == "conv":
        return TapMap({c: c for c in conv_names}, traced_by="none")
    calls, traced_by = _trace(model, example_inputs)
    graph = _CallGraph(calls, names, traced_by)
    result = TapMap(traced_by=traced_by)
    for c in conv_names:
        result[c] = _resolve_one(graph, c, point, result)
    return result
