"""No code from files, and one provenance chain: a planted ``os:system`` never runs, a mixed or stale chain is
refused naming the command to re-run, and hand-edited JSON is caught on read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from cosep_deploy.errors import UntrustedCodeError
from tests.faults.conftest import assert_one_line, assert_unchanged, invoke, tree_hashes


def _plant(path: Path, key: str | None, witness: Path) -> None:
    body = json.loads(path.read_text())
    spec = body[key] if key else body
    spec["name"] = "os:system"
    spec["kwargs"] = {"command": f"touch '{witness}'"}
    path.write_text(json.dumps(body))


def test_planted_os_system_in_dense_model_json_never_runs(run_copy: Path, tmp_path: Path) -> None:
    witness = tmp_path / "pwned"
    _plant(run_copy / "dense" / "model.json", "spec", witness)
    before = tree_hashes(run_copy)
    for command in ("prune", "export"):
        result = invoke(command, "--run", str(run_copy))
        assert_one_line(result, 1, "os:system", "--trust-model-code")
        assert not witness.exists()
    assert_unchanged(before, tree_hashes(run_copy))


def test_planted_os_system_in_a_plan_never_runs(run_copy: Path, tmp_path: Path) -> None:
    from cosep_deploy.prune.plan import load_pruned

    witness = tmp_path / "pwned"
    _plant(run_copy / "pruned" / "plan.json", "base_model", witness)
    with pytest.raises(UntrustedCodeError, match="os:system"):
        load_pruned(run_copy / "pruned")
    assert not witness.exists()


def test_trusted_factory_name_is_built(run_copy: Path) -> None:
    from cosep_deploy.models import load_checkpoint

    meta = run_copy / "dense" / "model.json"
    body = json.loads(meta.read_text())
    body["spec"]["name"] = "cosep_deploy.models.cifar_resnet:resnet20"
    meta.write_text(json.dumps(body))
    with pytest.raises(UntrustedCodeError):
        load_checkpoint(run_copy / "dense")
    model, spec, _ = load_checkpoint(run_copy / "dense", trust_code=True)
    assert spec.name.endswith(":resnet20") and isinstance(model, nn.Module)


class MyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.conv2, self.bn2 = nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.fc(x.mean(dim=(2, 3)))


def test_readme_api_round_trips_for_a_users_own_model(digits8: object, tmp_path: Path) -> None:
    """The README's example: prune(MyNet()) -> save_pruned -> load_pruned(model=MyNet())."""
    from cosep_deploy.data import ClassBalancedSubset, make_loader
    from cosep_deploy.prune import PruneConfig, load_pruned, prune, save_pruned

    torch.manual_seed(0)
    model = MyNet().eval()
    loader = make_loader(ClassBalancedSubset(digits8.train, 8, seed=0), batch_size=64)  # type: ignore[attr-defined]
    x = torch.stack([digits8.val[i][0] for i in range(4)])  # type: ignore[attr-defined]
    pruned, plan = prune(model, loader, example_inputs=x, config=PruneConfig(round_to=4))
    save_pruned(plan, pruned, tmp_path / "mine" / "pruned")
    with pytest.raises(Exception, match="model=MyNet"):
        load_pruned(tmp_path / "mine" / "pruned")
    again, _ = load_pruned(tmp_path / "mine" / "pruned", model=MyNet())
    with torch.no_grad():
        assert torch.allclose(pruned.eval()(x), again(x), atol=1e-5)


def test_dense_model_of_another_architecture_is_not_mixed(run_copy: Path) -> None:
    """train --model resnet56 after a ResNet-20 run: the old plan, ONNX, engines and bench are refused."""
    result = invoke("train", "--run", str(run_copy), "--model", "resnet56", "--epochs", "0")
    assert result.exit_code == 0, result.output
    before = tree_hashes(run_copy)
    for command in ("export", "bench", "report", "finetune"):
        result = invoke(command, "--run", str(run_copy))
        assert_one_line(result, 1, "cosep-deploy prune")
    assert_unchanged(before, tree_hashes(run_copy))


def test_prune_again_without_finetune_refuses_the_old_finetuned_model(run_copy: Path) -> None:
    result = invoke("prune", "--run", str(run_copy), "--round-to", "8", "--images-per-class", "8")
    assert result.exit_code == 0, result.output
    before = tree_hashes(run_copy)
    for command in ("export", "report"):
        assert_one_line(invoke(command, "--run", str(run_copy)), 1, "cosep-deploy finetune")
    assert_unchanged(before, tree_hashes(run_copy))


def test_engines_from_other_onnx_are_refused(run_copy: Path) -> None:
    onnx = run_copy / "onnx" / "pruned.onnx"
    onnx.write_bytes(onnx.read_bytes() + b"\0")
    before = tree_hashes(run_copy)
    assert_one_line(invoke("bench", "--run", str(run_copy)), 1, "cosep-deploy export")
    assert_one_line(invoke("build", "--run", str(run_copy)), 1, "cosep-deploy export")
    assert_unchanged(before, tree_hashes(run_copy))


def test_report_leaves_out_latency_of_other_engines(run_copy: Path) -> None:
    engine = run_copy / "engines" / "cpu-onnxruntime" / "build.json"
    body = json.loads(engine.read_text())
    body["sources"]["onnx"]["dense.onnx"] = "0" * 64
    engine.write_text(json.dumps(body))
    result = invoke("report", "--run", str(run_copy), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert "latency" not in summary and any("cosep-deploy build" in s for s in summary["stale"])


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda p: p.update(history=None), "history"),
        (lambda p: p.update(input_shape="abc"), "input_shape"),
        (lambda p: p["groups"][0].update(n_kept=p["groups"][0]["n_kept"] - 1), "n_kept"),
        (lambda p: p["groups"][-1].update(kept=p["groups"][-1]["kept"][:-1], n_kept=None), "history"),
    ],
)
def test_hand_edited_plan_is_refused_on_read(run_copy: Path, edit: object, needle: str) -> None:
    for stage in ("pruned", "finetuned"):
        path = run_copy / stage / "plan.json"
        body = json.loads(path.read_text())
        edit(body)  # type: ignore[operator]
        path.write_text(json.dumps(body))
    before = tree_hashes(run_copy)
    for command in ("export", "report"):
        assert_one_line(invoke(command, "--run", str(run_copy)), 1, "plan", needle)
    assert_unchanged(before, tree_hashes(run_copy))


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda b: b.pop("engines"), "engines"),
        (lambda b: b["speedups"]["pruned"]["1"].update(speedup=9.99), "contradicts its medians"),
    ],
)
def test_hand_edited_bench_json_is_refused_on_read(run_copy: Path, edit: object, needle: str) -> None:
    path = run_copy / "bench" / "bench.json"
    body = json.loads(path.read_text())
    edit(body)  # type: ignore[operator]
    path.write_text(json.dumps(body))
    before = tree_hashes(run_copy)
    assert_one_line(invoke("report", "--run", str(run_copy)), 1, "bench.json", needle)
    assert_unchanged(before, tree_hashes(run_copy))


def test_pipeline_reruns_a_stage_whose_outputs_changed(fault_base_run: Path, run_copy: Path) -> None:
    """A standalone `prune` with other options changes pruned/: the pipeline's prune record no longer holds."""
    from cosep_deploy.pipeline.run import _output_hashes

    record = json.loads((run_copy / "stages" / "prune.json").read_text())
    from cosep_deploy.pipeline import PipelineConfig
    from cosep_deploy.pipeline.layout import RunLayout

    layout, cfg = RunLayout(run_copy), PipelineConfig()
    assert record["outputs"] == _output_hashes(layout, cfg, "prune")
    assert invoke("prune", "--run", str(run_copy), "--round-to", "8", "--images-per-class", "8").exit_code == 0
    assert record["outputs"] != _output_hashes(layout, cfg, "prune")
