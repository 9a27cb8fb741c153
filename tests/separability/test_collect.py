"""collect_class_stats against statistics computed by hand from a manual forward; resolve_taps."""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cosep_deploy.errors import ConfigError, DataError, SeparabilityError
from cosep_deploy.separability import collect_class_stats, parse_spatial, resolve_taps


class Tiny(nn.Module):
    """Conv-BN-ReLU, Conv-BN-ReLU(inplace), Conv + functional relu (no BN), Linear-relu-Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1, self.act1 = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()
        self.conv2, self.bn2 = nn.Conv2d(4, 6, 3, padding=1, stride=2), nn.BatchNorm2d(6)
        self.act2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(6, 5, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1, self.fc2 = nn.Linear(5, 7), nn.Linear(7, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.act2(self.bn2(self.conv2(x)))
        x = F.relu(self.conv3(x))
        return self.fc2(F.relu(self.fc1(self.pool(x).flatten(1))))


class Shared(nn.Module):
    """One ReLU module called twice per forward (as in torchvision's BasicBlock)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn, self.relu = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()
        self.conv2 = nn.Conv2d(4, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn(self.conv(x)))
        return self.relu(self.conv2(y))


class Branchy(Tiny):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if float(x.sum()) > 1e9:
            return torch.zeros(x.shape[0], 3)
        return super().forward(x)


M = TypeVar("M", bound=nn.Module)


def make(model_cls: type[M], seed: int = 0) -> M:
    torch.manual_seed(seed)
    model = model_cls()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):  # eval-mode BN that is not the identity
            assert m.running_mean is not None and m.running_var is not None
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    return model


Batches = list[tuple[torch.Tensor, torch.Tensor]]


def loader(batches: int = 3, size: int = 10, classes: int = 3, seed: int = 0) -> Batches:
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(size, 3, 8, 8, generator=g), torch.arange(size) % classes) for _ in range(batches)]


def by_hand(acts: torch.Tensor, labels: torch.Tensor, classes: int) -> tuple[np.ndarray, np.ndarray]:
    a, y = acts.double().numpy(), labels.numpy()
    return (
        np.stack([a[y == c].mean(axis=0) for c in range(classes)]),
        np.stack([a[y == c].var(axis=0, ddof=1) for c in range(classes)]),
    )


def manual_outputs(model: Tiny, data: Batches) -> dict[str, torch.Tensor]:
    model.eval()
    outs: dict[str, list[torch.Tensor]] = {k: [] for k in ("bn1", "bn2", "conv3", "fc1")}
    with torch.no_grad():
        for x, _ in data:
            b1 = model.bn1(model.conv1(x))
            b2 = model.bn2(model.conv2(model.act1(b1)))
            c3 = model.conv3(F.relu(b2))
            f1 = model.fc1(model.pool(F.relu(c3)).flatten(1))
            for k, v in zip(outs, (b1, b2, c3, f1), strict=True):
                outs[k].append(v)
    return {k: torch.cat(v) for k, v in outs.items()}


def test_gap_stats_equal_manual_forward_and_model_is_left_alone() -> None:
    model = make(Tiny)
    data = loader()
    ref = manual_outputs(make(Tiny), data)
    model.train()
    assert model.bn1.running_mean is not None
    running = model.bn1.running_mean.clone()
    stats = collect_class_stats(model, data, ["bn1", "bn2", "conv3", "fc1"])
    labels = torch.cat([y for _, y in data])
    for tap, out in ref.items():
        gap = out.mean(dim=(2, 3)) if out.ndim == 4 else out
        mean, var = by_hand(gap, labels, 3)
        np.testing.assert_allclose(stats[tap].mean, mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(stats[tap].var, var, rtol=1e-4, atol=1e-6)
        np.testing.assert_array_equal(stats[tap].counts, np.bincount(labels.numpy(), minlength=3))
    # bn2 is followed by ReLU(inplace=True): its statistics are the pre-activation values, negatives included
    assert stats["bn2"].mean.min() < 0
    assert stats["fc1"].shape == (7,)
    assert model.training and model.bn1.training  # modes restored
    assert torch.equal(running, model.bn1.running_mean)  # eval mode during collection: no BN update
    assert all(not m._forward_hooks for m in model.modules())


@pytest.mark.parametrize(("spatial", "positions"), [("pool:2", 4), ("pixel", 16)])
def test_spatial_modes_equal_manual(spatial: str, positions: int) -> None:
    data = loader(batches=2)
    ref = manual_outputs(make(Tiny), data)["bn2"]  # [B, 6, 4, 4]
    reduced = F.adaptive_avg_pool2d(ref, 2).flatten(2) if spatial == "pool:2" else ref.flatten(2)
    stats = collect_class_stats(make(Tiny), data, ["bn2"], spatial=spatial)["bn2"]
    mean, var = by_hand(reduced, torch.cat([y for _, y in data]), 3)
    assert stats.shape == (6, positions)
    np.testing.assert_allclose(stats.mean, mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats.var, var, rtol=1e-4, atol=1e-6)


def test_progress_max_batches_and_num_classes() -> None:
    seen: list[tuple[int, int | None]] = []
    stats = collect_class_stats(
        make(Tiny), loader(batches=3), ["bn1"], max_batches=2, num_classes=5, progress=lambda d, t: seen.append((d, t))
    )
    assert seen == [(1, 2), (2, 2)]
    assert stats["bn1"].num_classes == 5 and stats["bn1"].counts.sum() == 20
    with pytest.raises(DataError, match="num_classes"):
        collect_class_stats(make(Tiny), loader(classes=3), ["bn1"], num_classes=2)


def test_non_finite_activations_name_the_layer_and_hooks_are_removed() -> None:
    model = make(Tiny)
    with torch.no_grad():
        model.conv2.weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(DataError, match="'bn2' in batch 0"):
        collect_class_stats(model, loader(), ["bn1", "bn2"])
    assert all(not m._forward_hooks for m in model.modules())


def test_shared_module_needs_a_call_index() -> None:
    model = make(Shared)
    taps = resolve_taps(model, ["conv", "conv2"], point="act")
    assert dict(taps) == {"conv": "relu@0", "conv2": "relu@1"}
    data = loader(batches=2)
    with pytest.raises(SeparabilityError, match="more than once"):
        collect_class_stats(model, data, ["relu"])
    stats = collect_class_stats(model, data, ["relu@0", "relu@1"])
    with torch.no_grad():
        model.eval()
        first = torch.cat([model.relu(model.bn(model.conv(x))) for x, _ in data])
        second = torch.cat([F.relu(model.conv2(model.relu(model.bn(model.conv(x))))) for x, _ in data])
    labels = torch.cat([y for _, y in data])
    for tap, out in (("relu@0", first), ("relu@1", second)):
        mean = by_hand(out.mean(dim=(2, 3)), labels, 3)[0]
        np.testing.assert_allclose(stats[tap].mean, mean, rtol=1e-5, atol=1e-6)
    with pytest.raises(SeparabilityError, match="never produced"):
        collect_class_stats(model, data, ["relu@2"])


def test_resolve_taps_on_tiny_net() -> None:
    model = make(Tiny)
    names = ["conv1", "conv2", "conv3", "fc1"]
    bn = resolve_taps(model, names, point="bn")
    assert dict(bn) == {"conv1": "bn1", "conv2": "bn2", "conv3": "conv3", "fc1": "fc1"}
    assert set(bn.notes) == {"conv3", "fc1"} and "no BatchNorm" in bn.notes["conv3"]
    assert bn.traced_by == "torch.fx"
    act = resolve_taps(model, names, point="act")
    assert dict(act) == {"conv1": "act1", "conv2": "act2", "conv3": "conv3", "fc1": "fc1"}
    assert "functional" in act.notes["conv3"]
    assert dict(resolve_taps(model, names, point="conv")) == {n: n for n in names}


def test_resolve_taps_falls_back_to_hook_tracing() -> None:
    model = make(Branchy)
    with pytest.raises(SeparabilityError, match="example_inputs"):
        resolve_taps(model, ["conv1"], point="bn")
    model.train()
    example = torch.randn(2, 3, 8, 8)
    taps = resolve_taps(model, ["conv1", "conv2", "conv3"], point="act", example_inputs=example)
    assert taps.traced_by == "hooks"
    assert dict(taps) == {"conv1": "act1", "conv2": "act2", "conv3": "conv3"}
    assert model.training and all(not m._forward_hooks for m in model.modules())


def test_resolve_taps_on_resnet18() -> None:
    from torchvision.models import resnet18

    model = resnet18(weights=None)
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    bn = resolve_taps(model, convs, point="bn")
    expected = {c: (c[:-1] + "1" if c.endswith("downsample.0") else c.replace("conv", "bn")) for c in convs}
    assert dict(bn) == expected and not bn.notes
    act = resolve_taps(model, convs, point="act")
    assert act["conv1"] == "relu" and act["layer1.0.conv1"] == "layer1.0.relu@0"
    assert act["layer1.0.conv2"] == "layer1.0.bn2" and "add" in act.notes["layer1.0.conv2"]
    add = resolve_taps(model, convs, point="add")  # residual members: after the add (the block's 2nd relu)
    assert add["layer1.0.conv2"] == "layer1.0.relu@1" and add["layer2.0.downsample.0"] == "layer2.0.relu@1"
    assert add["layer1.0.conv1"] == "layer1.0.bn1"  # not a residual member: as "bn"
    # the resolved taps collect (shared relu by call index)
    data: list[Any] = [(torch.randn(4, 3, 64, 64), torch.tensor([0, 1, 0, 1]))]
    stats = collect_class_stats(model, data, [act["layer1.0.conv1"], bn["layer4.1.conv2"]], spatial="pool:2")
    assert stats["layer1.0.relu@0"].shape == (64, 4) and stats["layer4.1.bn2"].shape == (512, 4)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda m: collect_class_stats(m, loader(), ["bn9"]), SeparabilityError, "(?i)did you mean.*'bn1'"),
        (lambda m: collect_class_stats(m, loader(), ["bn1"], spatial="avg"), ConfigError, "spatial mode"),
        (lambda m: collect_class_stats(m, [], ["bn1"]), DataError, "no batches"),
        (lambda m: collect_class_stats(m, [torch.zeros(2, 3, 8, 8)], ["bn1"]), DataError, "pairs"),
        (lambda m: collect_class_stats(m, loader(), []), SeparabilityError, "no taps"),
        (lambda m: resolve_taps(m, ["conv4"]), SeparabilityError, "unknown layer"),
        (lambda m: resolve_taps(m, ["conv1"], point="relu"), ConfigError, "hook point"),
    ],
)
def test_bad_requests_raise(call: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        call(make(Tiny))


def test_parse_spatial() -> None:
    assert parse_spatial("gap") == ("gap", 1) and parse_spatial("pool:3") == ("pool", 3)
    assert parse_spatial("pixel") == ("pixel", 0)
    with pytest.raises(ConfigError, match="positive integer"):
        parse_spatial("pool:0")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_collection_equals_cpu() -> None:
    data = loader()
    cpu = collect_class_stats(make(Tiny), data, ["bn1", "fc1"], spatial="pool:2")
    gpu = collect_class_stats(make(Tiny).cuda(), data, ["bn1", "fc1"], spatial="pool:2")
    for tap in cpu:
        np.testing.assert_allclose(gpu[tap].mean, cpu[tap].mean, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(gpu[tap].var, cpu[tap].var, rtol=1e-3, atol=1e-5)


def test_empty_batches_are_skipped() -> None:
    data = loader(batches=2)
    empty = (torch.zeros(0, 3, 8, 8), torch.zeros(0, dtype=torch.int64))
    with_empty = collect_class_stats(make(Tiny), [data[0], empty, data[1]], ["bn1"])["bn1"]
    plain = collect_class_stats(make(Tiny), data, ["bn1"])["bn1"]
    np.testing.assert_array_equal(with_empty.counts, plain.counts)
    np.testing.assert_allclose(with_empty.mean, plain.mean)
