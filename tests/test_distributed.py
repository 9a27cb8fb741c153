"""torchrun with 2 CPU processes (gloo): statistics all-reduce to the 1-process values; DDP trains."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = r"""
import sys
import numpy as np
import torch
from cosep_deploy import distributed as ddist
from cosep_deploy.data import ClassBalancedSubset, load_dataset, make_loader
from cosep_deploy.finetune import TrainConfig, train_model
from cosep_deploy.models import ModelSpec, build_model
from cosep_deploy.separability import collect_class_stats

out = sys.argv[1]
ddist.init_from_env()
torch.manual_seed(0)
bundle = load_dataset("digits")
model = build_model(ModelSpec(name="resnet20", num_classes=10, in_channels=1, image_size=8), seed=0).eval()
subset = ClassBalancedSubset(bundle.train, 20, seed=0)
stats = collect_class_stats(model, make_loader(ddist.shard_dataset(subset), batch_size=16),
                            ["layer1.0.bn1", "layer3.2.bn2"], num_classes=10)
for st in stats.values():
    st.all_reduce()
train_model(model, bundle.train, bundle.val, TrainConfig(epochs=1, seed=0))
flat = torch.cat([p.detach().flatten() for p in model.parameters()])
gathered = [torch.zeros_like(flat) for _ in range(ddist.world_size())]
if ddist.is_distributed():
    torch.distributed.all_gather(gathered, flat)
else:
    gathered = [flat]
if ddist.is_main_process():
    np.savez(out, world=ddist.world_size(),
             **{f"{k}.{a}": getattr(st, a) for k, st in stats.items() for a in ("mean", "var")},
             **{f"{k}.count": st.counts for k, st in stats.items()},
             replicas_equal=all(torch.equal(g, gathered[0]) for g in gathered))
ddist.finish(0)
"""


def _run(tmp_path: Path, nproc: int) -> dict[str, np.ndarray]:
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    out = tmp_path / f"stats{nproc}.npz"
    if nproc == 1:
        cmd = [sys.executable, str(script), str(out)]
    else:
        torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
        assert torchrun, "torchrun is installed with torch"
        cmd = [torchrun, "--standalone", f"--nproc_per_node={nproc}", str(script), str(out)]
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=300,
        env={"OMP_NUM_THREADS": "1", "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(out) as data:
        return {k: data[k] for k in data.files}


@pytest.mark.slow
def test_two_process_statistics_equal_one_process(tmp_path: Path) -> None:
    one, two = _run(tmp_path, 1), _run(tmp_path, 2)
    assert int(two["world"]) == 2 and int(one["world"]) == 1
    for key in one:
        if key.endswith((".mean", ".var", ".count")):
            np.testing.assert_allclose(two[key], one[key], rtol=1e-10, atol=1e-12, err_msg=key)
    assert bool(two["replicas_equal"])  # DDP kept both replicas identical


@pytest.mark.slow
def test_cli_stages_under_torchrun(tmp_path: Path) -> None:
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert torchrun
    run = tmp_path / "run"
    env = {"OMP_NUM_THREADS": "1", "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin"}
    for args in (["train", "--epochs", "1"], ["prune", "--images-per-class", "8"]):
        cmd = [
            torchrun,
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "cosep_deploy",
            "--quiet",
            *args,
            "--run-dir",
            str(run),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert (run / "dense" / "model.safetensors").is_file() and (run / "pruned" / "plan.json").is_file()
    assert not list(run.rglob("*.staging"))
