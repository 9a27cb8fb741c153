"""``cosep-deploy profile``: real ONNX Runtime profiles of two small real models, trtexec exports, a run
directory (and its up-to-date check), and one clear error line for each kind of bad input."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from cosep_deploy.bench.layers import LayersReport
from cosep_deploy.cli.main import cli
from cosep_deploy.pipeline.layout import RunLayout
from cosep_deploy.pipeline.stages import layers_stage
from tests.backends.test_trtexec import LAYERS_DETAILED, PROFILE_10X
from tests.bench.test_layers import export_tiny_pair


@pytest.fixture(scope="module")
def tiny_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return export_tiny_pair(tmp_path_factory.mktemp("tiny"))


def _invoke(args: list[str], *, quiet: bool = False) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [*(["--quiet"] if quiet else []), *args])
    return result.exit_code, result.output


def _one_error(code: int, output: str, *needles: str) -> None:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1 and lines[0].startswith("error: "), output
    assert "Traceback" not in output and all(n in lines[0] for n in needles), (needles, lines[0])


def test_profile_two_onnx_files(tiny_pair: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "layers.json"
    fast = ["--iterations", "4", "--warmup", "1", "--threads", "1"]
    code, output = _invoke(["profile", "--onnx", *map(str, tiny_pair), "--out", str(out), "--top", "3", *fast])
    assert code == 0, output
    report = LayersReport.load(out)
    assert report.settings["iterations"] == 4 and report.unmatched == {"dense": [], "pruned": []}
    assert "Where time goes" in output and "By kind of layer" in output and f"written to {out}" in output
    assert "Conv (depthwise)" in {k["kind"] for k in report.by_kind}
    code, output = _invoke(["profile", "--onnx", *map(str, tiny_pair), "--out", str(out), "--json", *fast])
    assert code == 0 and json.loads(output)["schema"] == "LayersReport"


def test_profile_trtexec_exports(tmp_path: Path) -> None:
    files = []
    for name, data in (("d.json", PROFILE_10X), ("p.json", PROFILE_10X[:2]), ("li.json", LAYERS_DETAILED)):
        files.append(tmp_path / name)
        files[-1].write_text(json.dumps(data))
    out = tmp_path / "layers.json"
    args = ["profile", "--trtexec-profiles", str(files[0]), str(files[1]), "--out", str(out)]
    code, output = _invoke([*args, "--trtexec-layer-info", str(files[2]), str(files[2])])
    assert code == 0, output
    report = LayersReport.load(out)
    assert report.source == "trtexec" and len(report.unmatched["dense"]) == 2  # listed, not hidden
    assert "only in dense" in output and "/layer1/Conv" in output
    code, output = _invoke(["profile", "--trtexec-profiles", str(files[0]), str(files[2]), "--out", str(out)])
    _one_error(code, output, "--exportProfile")


def test_profile_a_run_and_its_up_to_date_check(tiny_pair: tuple[Path, Path], tmp_path: Path) -> None:
    from cosep_deploy.rundir import run_session

    run = RunLayout(tmp_path / "run")
    with run_session(run.root, create=True):  # a run directory (its marker) holding only ONNX files
        run.onnx.mkdir(parents=True)
    for src, name in zip(tiny_pair, ("dense.onnx", "pruned.onnx"), strict=True):
        shutil.copy(src, run.onnx / name)
    code, output = _invoke(["profile", "--run", str(run.root), "--iterations", "3", "--threads", "1"])
    assert code == 0, output
    assert run.layers_json.is_file() and f"written to {run.layers_json}" in output
    first = LayersReport.load(run.layers_json)
    assert first.settings["dense_file"] == "dense.onnx" and first.settings["iterations"] == 3

    os.utime(run.layers_json, (1, 1))
    same = layers_stage(run.root, iterations=3, warmup=5, threads=1)  # what the CLI ran: up to date
    assert same == first and run.layers_json.stat().st_mtime == 1
    again = layers_stage(run.root, iterations=4, warmup=5, threads=1)  # other settings: profiled again
    assert again.settings["iterations"] == 4 and run.layers_json.stat().st_mtime > 1
    shutil.copy(tiny_pair[0], run.onnx / "pruned.onnx")  # another pruned model: profiled again
    changed = layers_stage(run.root, iterations=4, warmup=5, threads=1)
    assert changed.provenance["inputs"]["pruned_sha256"] == changed.provenance["inputs"]["dense_sha256"]


def test_bad_input_gives_one_error_line(tiny_pair: tuple[Path, Path], tmp_path: Path) -> None:
    dense, pruned = map(str, tiny_pair)
    out = tmp_path / "layers.json"
    cases = [
        (["profile"], ["exactly one of"]),
        (["profile", "--onnx", dense, pruned, "--run", str(tmp_path)], ["exactly one of"]),
        (["profile", "--onnx", dense, str(tmp_path / "no.onnx"), "--out", str(out)], ["not found", "no.onnx"]),
        (["profile", "--run", str(tmp_path / "no-run")], ["no-run", "does not exist"]),
        (["profile", "--run", str(tmp_path)], ["cosep-deploy export"]),
        (["profile", "--run", str(tmp_path), "--out", str(out)], ["--out"]),
        (["profile", "--onnx", dense, pruned, "--precision", "fp16"], ["--precision"]),
        (["profile", "--onnx", dense, pruned, "--trtexec-layer-info", dense, pruned], ["--trtexec-layer-info"]),
    ]
    for args, needles in cases:
        code, output = _invoke(args, quiet=True)
        _one_error(code, output, *needles)
    assert not out.exists() and not (tmp_path / "bench").exists()  # nothing half-written
