"""Structural pruning on the model zoo: real Torch-Pruning surgery, real statistics, plan round trips."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from cosep_deploy.errors import ConfigError, DataError, PlanMismatchError, PruneError
from cosep_deploy.models import ModelSpec, build_model
from cosep_deploy.prune import PruneConfig, count_macs_params, load_pruned, prune, save_pruned


def _digits_loader(size: int, channels: int, per_class: int = 4) -> Any:
    from cosep_deploy.data import ClassBalancedSubset, load_dataset, make_loader

    bundle = load_dataset("digits", image_size=size, channels=channels)
    return make_loader(ClassBalancedSubset(bundle.train, per_class, seed=0), batch_size=64)


def _roundtrip(tmp_path: Path, pruned: nn.Module, plan: Any, x: torch.Tensor) -> None:
    save_pruned(plan, pruned, tmp_path / "p")
    again, plan2 = load_pruned(tmp_path / "p")
    assert plan2.history == plan.history
    with torch.no_grad():
        assert torch.equal(again(x), pruned(x))


# (model name, input size, input channels): CIFAR models at digits size, torchvision models at 32x32.
# CoSeP selection (statistics on real digits images) runs on the CIFAR zoo and ResNet-18; the surgery,
# which is the same whatever chose the channels, runs on every supported torchvision family with l1.
COSEP_ZOO = [
    ("resnet20", 8, 1),
    ("resnet56", 8, 1),
    ("vgg16_cifar", 8, 1),
    ("vgg19_cifar", 8, 1),
    ("mobilenetv2_cifar", 8, 1),
    ("densenet40", 8, 1),
    ("resnet18", 32, 3),
]
SURGERY_ZOO = [
    "resnet50",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "densenet121",
    "vgg16_bn",
    "vgg19_bn",
    "efficientnet_b0",
    "googlenet",
    "squeezenet1_0",
    "convnext_tiny",
    "regnet_x_400mf",  # grouped convolutions: those groups are skipped, the rest pruned
    "resnext50_32x4d",
]


def _check_pruned(tmp_path: Path, model: nn.Module, pruned: nn.Module, plan: Any, x: torch.Tensor) -> None:
    shape = tuple(x.shape[1:])
    assert plan.cost_after["macs"] < plan.cost_before["macs"]
    assert count_macs_params(pruned, shape).macs == plan.cost_after["macs"]
    with torch.no_grad():
        assert pruned(x).shape == (2, 10)
        assert model(x).shape == (2, 10)  # the user's model is left untouched
    assert count_macs_params(model, shape).macs == plan.cost_before["macs"]
    _roundtrip(tmp_path, pruned, plan, x)


@pytest.mark.parametrize(("name", "size", "channels"), COSEP_ZOO, ids=[z[0] for z in COSEP_ZOO])
def test_cosep_prunes_every_supported_model(tmp_path: Path, name: str, size: int, channels: int) -> None:
    spec = ModelSpec(name=name, num_classes=10, in_channels=channels, image_size=size)
    model = build_model(spec, seed=0).eval()
    x = torch.randn(2, channels, size, size)
    pruned, plan = prune(
        model,
        _digits_loader(size, channels),
        example_inputs=x,
        base_spec=spec.to_json(),
        config=PruneConfig(k_grid="auto", images_per_class=4),
    )
    assert all(g["count_rule"] == "mss_knee" and g["curve"] for g in plan.groups if g["grid"] != "none")
    _check_pruned(tmp_path, model, pruned, plan, x)


@pytest.mark.parametrize("name", SURGERY_ZOO)
def test_surgery_on_torchvision_families(tmp_path: Path, name: str) -> None:
    spec = ModelSpec(name=name, num_classes=10, in_channels=3, image_size=32)
    model = build_model(spec, seed=0).eval()
    x = torch.randn(2, 3, 32, 32)
    pruned, plan = prune(
        model, [], example_inputs=x, base_spec=spec.to_json(), config=PruneConfig(method="l1", ratio=0.5)
    )
    _check_pruned(tmp_path, model, pruned, plan, x)
    if name in ("regnet_x_400mf", "resnext50_32x4d"):
        assert plan.config["skipped_groups"]


def test_unsupported_architecture_is_a_clear_error() -> None:
    model = build_model(ModelSpec(name="shufflenet_v2_x0_5", num_classes=10, in_channels=3, image_size=32))
    with pytest.raises(PruneError, match="not supported"):
        prune(model, [], example_inputs=torch.randn(2, 3, 32, 32), config=PruneConfig(method="l1", ratio=0.5))


@pytest.mark.parametrize("method", ["l1", "random", "uniform", "emp"])
def test_baselines(tmp_path: Path, trained_resnet20: nn.Module, method: str) -> None:
    x = torch.randn(2, 1, 8, 8)
    ratio = None if method == "emp" else 0.5
    spec = ModelSpec(name="resnet20", num_classes=10, in_channels=1, image_size=8)
    pruned, plan = prune(
        trained_resnet20,
        _digits_loader(8, 1),
        example_inputs=x,
        base_spec=spec.to_json(),
        config=PruneConfig(method=method, ratio=ratio, seed=3),
    )
    assert plan.method == method and plan.cost_after["macs"] < plan.cost_before["macs"]
    for g in plan.groups:
        if method != "emp":
            assert g["n_kept"] == round(g["size"] * 0.5)
    _roundtrip(tmp_path, pruned, plan, x)


def test_matched_counts_and_budget(trained_resnet20: nn.Module) -> None:
    x = torch.randn(2, 1, 8, 8)
    loader = _digits_loader(8, 1)
    _, cosep_plan = prune(trained_resnet20, loader, example_inputs=x)
    counts = {g["root"]: g["n_kept"] for g in cosep_plan.groups}
    _, l1_plan = prune(trained_resnet20, loader, example_inputs=x, config=PruneConfig(method="l1", counts=counts))
    assert {g["root"]: g["n_kept"] for g in l1_plan.groups} == counts
    assert l1_plan.cost_after["macs"] == cosep_plan.cost_after["macs"]
    for method in ("cosep", "random"):
        _, budget = prune(
            trained_resnet20, loader, example_inputs=x, config=PruneConfig(method=method, target_macs_ratio=1.8)
        )
        assert 1.8 <= budget.macs_ratio < 2.1


def test_reuse_shares_statistics_between_count_rules_only(trained_resnet20: nn.Module) -> None:
    """``prune(reuse=...)``: later one-shot prunes of the same model that differ only in how counts are set
    take the first call's statistics and selections and decide exactly as a fresh prune would; another
    model (weights changed) or other statistics settings are misses."""
    loader, x = _digits_loader(8, 1), torch.randn(2, 1, 8, 8)
    reuse: dict[str, Any] = {}

    def both(cfg: PruneConfig, model: nn.Module = trained_resnet20) -> tuple[Any, Any]:
        _, fresh = prune(model, loader, example_inputs=x, config=cfg)
        _, shared = prune(model, loader, example_inputs=x, config=cfg, reuse=reuse)
        assert fresh.config["statistics_reused"] is False
        assert [g["kept"] for g in shared.groups] == [g["kept"] for g in fresh.groups]
        assert [g.get("curve") for g in shared.groups] == [g.get("curve") for g in fresh.groups]
        return fresh, shared

    _, first = both(PruneConfig(target_macs_ratio=2.0))
    assert first.config["statistics_reused"] is False and len(reuse["stats"]) == 1
    for cfg in (PruneConfig(target_macs_ratio=3.0), PruneConfig(round_to=4), PruneConfig(knee_rule="paper")):
        assert both(cfg)[1].config["statistics_reused"] is True  # only counts or the knee rule differ
    assert both(PruneConfig(images_per_class=2))[1].config["statistics_reused"] is False
    other = build_model(ModelSpec(name="resnet20", num_classes=10, in_channels=1, image_size=8), seed=1).eval()
    assert both(PruneConfig(target_macs_ratio=2.0), other)[1].config["statistics_reused"] is False
    _, seq = prune(trained_resnet20, loader, example_inputs=x, config=PruneConfig(schedule="sequential"), reuse=reuse)
    assert seq.config["statistics_reused"] is False  # statistics of a network pruned so far: never shared


def test_alignment_never_overrules_the_knee(trained_resnet20: nn.Module) -> None:
    loader, x = _digits_loader(8, 1), torch.randn(2, 1, 8, 8)
    _, exact = prune(trained_resnet20, loader, example_inputs=x, config=PruneConfig(round_to=1))
    assert all(g["n_kept"] == g["k"] and g["kept"] == g["picked"] for g in exact.groups)
    _, plan = prune(trained_resnet20, loader, example_inputs=x, config=PruneConfig(round_to=8))
    for g in plan.groups:
        a = g["alignment"]
        assert a["round_to"] == 8 and a["k"] == g["k"] and a["aligned"] == g["n_kept"]
        assert (g["n_kept"] - g["k"]) / g["n_kept"] <= 0.25 and abs(g["n_kept"] - g["k"]) <= g["k"] // 4
        assert g["n_kept"] % 8 == 0 or g["n_kept"] == g["size"] or a["skipped"]
        assert set(g["picked"]) <= set(g["kept"]) or g["n_kept"] < g["k"]
        assert g["knee"]["rule"] == "robust" and g["why"].startswith("cosep: mss_knee")


def test_sequential_schedule_calls_back_between_layers(trained_resnet20: nn.Module) -> None:
    seen: list[str] = []
    _, plan = prune(
        trained_resnet20,
        _digits_loader(8, 1),
        example_inputs=torch.randn(2, 1, 8, 8),
        config=PruneConfig(schedule="sequential"),
        between_layers=lambda m, root: seen.append(root),
    )
    assert seen == [g["root"] for g in plan.groups] and len(seen) >= 5
    assert plan.cost_after["macs"] < plan.cost_before["macs"]


def test_bad_input(tmp_path: Path, trained_resnet20: nn.Module) -> None:
    x = torch.randn(2, 1, 8, 8)
    loader = _digits_loader(8, 1)
    with pytest.raises(PruneError, match=r"layer1\.0\.conv9"):
        prune(trained_resnet20, loader, example_inputs=x, config=PruneConfig(ignored_layers=("layer1.0.conv9",)))
    unlabeled = [torch.randn(4, 1, 8, 8) for _ in range(2)]
    with pytest.raises(DataError, match="labels"):
        prune(trained_resnet20, unlabeled, example_inputs=x)
    few = [(torch.randn(8, 1, 8, 8), torch.arange(8) % 5)]
    with pytest.raises(DataError, match="missing"):
        prune(trained_resnet20, few, example_inputs=x)
    with pytest.raises(ConfigError):
        PruneConfig(method="l1")  # no count rule
    with pytest.raises(ConfigError, match=r"Did you mean .cosep.\?"):
        PruneConfig(method="cosp")


def test_plan_for_another_model_is_refused(tmp_path: Path, trained_resnet20: nn.Module) -> None:
    import json

    spec = ModelSpec(name="resnet20", num_classes=10, in_channels=1, image_size=8)
    pruned, plan = prune(
        trained_resnet20, _digits_loader(8, 1), example_inputs=torch.randn(2, 1, 8, 8), base_spec=spec.to_json()
    )
    save_pruned(plan, pruned, tmp_path / "p")
    body = json.loads((tmp_path / "p/plan.json").read_text())
    body["base_model"]["name"] = "vgg16_cifar"
    (tmp_path / "p/plan.json").write_text(json.dumps(body))
    with pytest.raises(PlanMismatchError):
        load_pruned(tmp_path / "p")
