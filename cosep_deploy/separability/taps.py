"""Which module output stands for a conv (or linear) layer: the tap of a hook point.

:func:`resolve_taps` traces the model (torch.fx, else forward hooks linked by tensor identity) and maps each
layer to the tap for a hook point: the layer itself (``conv``), the BatchNorm that directly consumes its
output (``bn``), the activation module right after that (``act``), or the activation after the residual
addition the layer feeds (``add``). Every fallback is explained in ``TapMap.notes``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from cosep_deploy.errors import ConfigError, SeparabilityError, unknown_name

__all__ = ["HOOK_POINTS", "TapMap", "module_names", "resolve_taps"]

HOOK_POINTS = ("conv", "bn", "act", "add")
_ADDS = ("add", "iadd", "add_")
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


def module_names(model: nn.Module) -> dict[str, nn.Module]:
    """Every named submodule (the root, with its empty name, left out)."""
    return {n: m for n, m in model.named_modules() if n}


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
    names = module_names(model)
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
