"""The selection seam: methods registered by name behind one interface, allocators, BN recalibration."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from torch import nn

from cosep_deploy.errors import ConfigError
from cosep_deploy.prune import PruneConfig, prune
from cosep_deploy.prune.decision import CountChoice
from cosep_deploy.prune.methods import SelectionMethod, get_method, method_names, register_method


def _loader(per_class: int = 4) -> Any:
    from cosep_deploy.data import ClassBalancedSubset, load_dataset, make_loader

    bundle = load_dataset("digits", image_size=8, channels=1)
    return make_loader(ClassBalancedSubset(bundle.train, per_class, seed=0), batch_size=64)


def test_builtin_methods_are_registered() -> None:
    assert {"cosep", "l1", "random", "uniform", "emp", "random_clusters"} <= set(method_names())
    with pytest.raises(ConfigError, match=r"Did you mean .cosep.\?"):
        get_method("cosp")


def test_a_new_criterion_is_one_class(trained_resnet20: nn.Module) -> None:
    """A user's method: keep the channels of *smallest* L1 norm, with its own count rule (a third)."""

    @register_method
    class SmallestL1(SelectionMethod):
        name: ClassVar[str] = "test_smallest_l1"

        def own_count(self, group: Any, stats: Any) -> CountChoice:
            return CountChoice(max(1, group.size // 3), "a third")

        def choose(self, group: Any, stats: Any, count: int) -> Any:
            return tuple(sorted(int(i) for i in np.argsort(stats.norms)[:count])), {"keep": "min_l1"}

    _, plan = prune(
        trained_resnet20, [], example_inputs=torch.randn(2, 1, 8, 8), config=PruneConfig(method=SmallestL1.name)
    )
    for g in plan.groups:
        scores = np.asarray(g["scores"])
        assert g["method"] == "test_smallest_l1" and g["count_rule"] == "a third" and g["n_kept"] == g["size"] // 3
        assert max(scores[g["kept"]]) <= min(np.delete(scores, g["kept"]))


def test_random_clusters_keep_the_best_channel_of_each_random_cluster(trained_resnet20: nn.Module) -> None:
    x = torch.randn(2, 1, 8, 8)
    _, cosep_plan = prune(trained_resnet20, _loader(), example_inputs=x)
    counts = {g["root"]: g["n_kept"] for g in cosep_plan.groups}
    _, plan = prune(trained_resnet20, [], example_inputs=x, config=PruneConfig(method="random_clusters", counts=counts))
    assert {g["root"]: g["n_kept"] for g in plan.groups} == counts
    assert plan.cost_after["macs"] == cosep_plan.cost_after["macs"]
    _, again = prune(
        trained_resnet20, [], example_inputs=x, config=PruneConfig(method="random_clusters", counts=counts)
    )
    assert [g["kept"] for g in again.groups] == [g["kept"] for g in plan.groups]  # seeded
    _, l1 = prune(trained_resnet20, [], example_inputs=x, config=PruneConfig(method="l1", counts=counts))
    assert [g["kept"] for g in l1.groups] != [g["kept"] for g in plan.groups]


def test_paper_knee_rule_is_a_named_mode(trained_resnet20: nn.Module) -> None:
    _, plan = prune(
        trained_resnet20, _loader(), example_inputs=torch.randn(2, 1, 8, 8), config=PruneConfig(knee_rule="paper")
    )
    assert plan.config["knee_rule"] == "paper"
    assert all(g["knee"]["rule"] == "paper" for g in plan.groups if g["knee"])


def test_bn_recalibration_is_recorded_and_changes_only_bn_statistics(trained_resnet20: nn.Module) -> None:
    x = torch.randn(2, 1, 8, 8)
    cfg = PruneConfig(method="l1", ratio=0.5)
    plain, plan = prune(trained_resnet20, _loader(), example_inputs=x, config=cfg)
    recal, plan_r = prune(
        trained_resnet20, _loader(), example_inputs=x, config=PruneConfig(method="l1", ratio=0.5, bn_recalibrate=2)
    )
    assert plan.config["bn_recalibrated"] is None
    assert plan_r.config["bn_recalibrated"] == {"layers": 21, "batches": 1, "images": 40}
    a, b = plain.state_dict(), recal.state_dict()
    changed = {k for k in a if not torch.equal(a[k], b[k])}
    assert changed and all(k.endswith(("running_mean", "running_var", "num_batches_tracked")) for k in changed)
    assert not recal.training


def test_sequential_refuses_a_budget_and_unknown_allocator() -> None:
    with pytest.raises(ConfigError, match="oneshot"):
        PruneConfig(schedule="sequential", target_macs_ratio=2.0)
    with pytest.raises(ConfigError, match="uniform"):
        PruneConfig(method="uniform", counts={"a": 1})


def test_residual_groups_hooked_after_the_add(trained_resnet20: nn.Module) -> None:
    _, plan = prune(
        trained_resnet20, _loader(), example_inputs=torch.randn(2, 1, 8, 8), config=PruneConfig(hook_point="add")
    )
    residual = [g for g in plan.groups if len(g["members"]) > 1]
    assert residual, "ResNet-20 has residual groups outside the stem's"
    for g in residual:
        taps = [m["tap"] for m in g["members"]]
        assert all(t.endswith("relu2") for t in taps) and len(set(taps)) == len(taps)  # one per block
    assert all(g["members"][0]["tap"].endswith("bn1") for g in plan.groups if g["root"].endswith("conv1"))


def test_papers_schedule_fine_tunes_between_layers(trained_resnet20: nn.Module, digits8: Any) -> None:
    from cosep_deploy.finetune.between import BetweenLayers, BetweenLayersConfig

    cfg = PruneConfig(schedule="sequential", images_per_class=4)
    assert cfg.between_epochs_resolved == 2 and cfg.to_json()["between_epochs"] == 2  # the paper's default
    assert PruneConfig().between_epochs_resolved == 0
    with pytest.raises(ConfigError, match="sequential"):
        PruneConfig(between_epochs=1)
    between = BetweenLayers(digits8.train, BetweenLayersConfig(epochs=1, fraction=0.05, seed=0))
    pruned, plan = prune(
        trained_resnet20, _loader(), example_inputs=torch.randn(2, 1, 8, 8), config=cfg, between_layers=between
    )
    records = plan.config["between_layers"]
    assert [r["root"] for r in records] == [g["root"] for g in plan.groups]
    assert all(r["epochs"] == 1 and r["images"] > 0 and r["last_loss"] is not None for r in records)
    assert not pruned.training
