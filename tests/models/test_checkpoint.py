"""Checkpoints (safetensors + JSON spec) and weight loading from torch files, including bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from cosep_deploy.artifacts import sha256_file
from cosep_deploy.errors import ModelError
from cosep_deploy.models import (
    ModelSpec,
    build_model,
    load_checkpoint,
    load_weights,
    read_checkpoint,
    save_checkpoint,
)

SPEC = ModelSpec(name="resnet20", num_classes=10, in_channels=1, image_size=8)


def _trained_ish() -> nn.Module:
    """A model whose BN running statistics differ from their initial values."""
    model = build_model(SPEC, seed=0)
    model.train()
    with torch.no_grad():
        model(torch.randn(8, 1, 8, 8) * 3 + 1)
    return model.eval()


def test_checkpoint_round_trip_reproduces_outputs(tmp_path: Path) -> None:
    model = _trained_ish()
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        expected = model(x)
    out = save_checkpoint(model, SPEC, tmp_path / "ckpt", extra={"trained_on": "digits"})
    meta = json.loads((out / "model.json").read_text())
    assert meta["schema"] == "ModelCheckpoint" and meta["schema_version"] == 1
    assert meta["sha256"] == sha256_file(out / "model.safetensors")
    assert meta["spec"] == SPEC.to_json() and meta["trained_on"] == "digits"
    assert sorted(p.name for p in out.iterdir()) == ["model.json", "model.safetensors"]  # no temp files

    loaded, spec, meta2 = load_checkpoint(out)
    assert spec == SPEC and meta2["trained_on"] == "digits"
    assert not loaded.training
    with torch.no_grad():
        assert torch.equal(loaded(x), expected)


def test_shared_tensors_are_saved(tmp_path: Path) -> None:
    first, second = nn.Linear(4, 4, bias=False), nn.Linear(4, 4, bias=False)
    second.weight = first.weight  # tied: two state-dict names, one storage
    save_checkpoint(nn.Sequential(first, second), ModelSpec(name="x.y:z"), tmp_path)
    a, b = nn.Linear(4, 4, bias=False), nn.Linear(4, 4, bias=False)
    load_weights(nn.Sequential(a, b), tmp_path / "model.safetensors")
    assert torch.equal(a.weight, first.weight) and torch.equal(b.weight, first.weight)


def test_load_weights_from_torch_state_dict(tmp_path: Path) -> None:
    source = _trained_ish()
    plain, wrapped, ddp = tmp_path / "plain.pt", tmp_path / "wrapped.pth", tmp_path / "ddp.pt"
    torch.save(source.state_dict(), plain)
    torch.save({"epoch": 3, "state_dict": source.state_dict()}, wrapped)
    torch.save({f"module.{k}": v for k, v in source.state_dict().items()}, ddp)
    x = torch.randn(2, 1, 8, 8)
    for path in (plain, wrapped, ddp):
        target = build_model(SPEC, seed=1).eval()
        load_weights(target, path)
        with torch.no_grad():
            assert torch.equal(target(x), source(x)), path


def test_missing_num_batches_tracked_is_tolerated(tmp_path: Path) -> None:
    state = {k: v for k, v in _trained_ish().state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "w.pt")
    load_weights(build_model(SPEC), tmp_path / "w.pt")


def test_mismatched_weights_list_the_problems(tmp_path: Path) -> None:
    save_checkpoint(build_model(SPEC), SPEC, tmp_path)
    weights = tmp_path / "model.safetensors"
    with pytest.raises(ModelError, match=r"shape mismatch: fc.weight: file \(10, 64\) vs model \(5, 64\)"):
        load_weights(build_model(ModelSpec(name="resnet20", num_classes=5, in_channels=1)), weights)
    with pytest.raises(ModelError, match=r"missing: layer1\.3\.") as info:
        load_weights(build_model(ModelSpec(name="resnet56", in_channels=1)), weights)
    assert "more)" in str(info.value)  # long lists are cut short
    torch.save({"fc.weight": torch.zeros(10, 64), "extra.bias": torch.zeros(3)}, tmp_path / "part.pt")
    with pytest.raises(ModelError, match=r"unexpected: extra\.bias"):
        load_weights(build_model(SPEC), tmp_path / "part.pt")


def test_corrupted_safetensors_is_a_model_error(tmp_path: Path) -> None:
    save_checkpoint(build_model(SPEC), SPEC, tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ModelError, match="cannot read weights"):
        load_weights(build_model(SPEC), weights)
    (tmp_path / "junk.safetensors").write_bytes(b"not a tensor file at all")
    with pytest.raises(ModelError, match="corrupted"):
        load_weights(build_model(SPEC), tmp_path / "junk.safetensors")


class _Evil:
    pass


def test_torch_file_with_arbitrary_objects_is_refused(tmp_path: Path) -> None:
    torch.save({"conv1.weight": _Evil()}, tmp_path / "evil.pt")
    with pytest.raises(ModelError, match="weights_only=True"):
        load_weights(build_model(SPEC), tmp_path / "evil.pt")
    torch.save({"lr": 0.1}, tmp_path / "notweights.pt")
    with pytest.raises(ModelError, match="state dict of tensors"):
        load_weights(build_model(SPEC), tmp_path / "notweights.pt")


def test_checkpoint_integrity_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"model\.json is missing"):
        load_checkpoint(tmp_path / "nothing")
    out = save_checkpoint(build_model(SPEC), SPEC, tmp_path / "c")
    # replace the weights with another valid file: the recorded hash catches it
    save_checkpoint(build_model(SPEC, seed=5), SPEC, tmp_path / "other")
    (out / "model.safetensors").write_bytes((tmp_path / "other" / "model.safetensors").read_bytes())
    with pytest.raises(ModelError, match="sha256"):
        load_checkpoint(out)

    out = save_checkpoint(build_model(SPEC), SPEC, tmp_path / "d")
    meta = json.loads((out / "model.json").read_text())
    (out / "model.json").write_text(json.dumps({**meta, "schema": "PrunePlan"}))
    with pytest.raises(ModelError, match="not a ModelCheckpoint"):
        read_checkpoint(out)
    (out / "model.json").write_text(json.dumps({**meta, "schema_version": 99}))
    with pytest.raises(ModelError, match="schema version 99"):
        read_checkpoint(out)
    (out / "model.json").write_text("{ not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        read_checkpoint(out)
    with pytest.raises(ModelError, match="reserved"):
        save_checkpoint(build_model(SPEC), SPEC, tmp_path / "e", extra={"sha256": "x"})
