"""Shared pieces of the on-board tests: tiny dense/pruned ONNX pairs, stand-in board tools on PATH, and
running a bundle's ``build_and_bench.sh`` against the strict stand-in trtexec of one release."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
BASH = shutil.which("bash")

# Output formats of the board's tools as JetPack prints them (Orin, JetPack 5/6).
NVPMODEL = """#!/bin/sh
[ "$1" = "-q" ] || exit 2
echo "NV Power Mode: ${STANDIN_POWER_MODE:-MAXN}"
echo "${STANDIN_POWER_ID:-0}"
"""
JETSON_CLOCKS = """#!/bin/sh
[ "$1" = "--show" ] || exit 2
echo "SOC family:tegra234  Machine:NVIDIA Jetson AGX Orin Developer Kit"
echo "Online CPUs: 0-1"
echo "cpu0: Online=1 Governor=schedutil MinFreq=729600 MaxFreq=2201600 CurrentFreq=2201600 IdleStates: WFI=0 c7=0"
echo "cpu1: Online=1 Governor=schedutil MinFreq=729600 MaxFreq=2201600 CurrentFreq=2201600 IdleStates: WFI=0 c7=0"
echo "GPU MinFreq=306000000 MaxFreq=1300500000 CurrentFreq=1300500000"
echo "EMC MinFreq=204000000 MaxFreq=3199000000 CurrentFreq=3199000000 FreqOverride=1"
echo "NV Power Mode: MAXN"
"""
TEGRASTATS = """#!/bin/sh
while true; do
  echo "12-03-2026 08:00:00 RAM 3209/30536MB (lfb 6528x4MB) SWAP 0/15268MB (cached 0MB) CPU [2%@2201,1%@2201] \
EMC_FREQ 0%@3199 GR3D_FREQ 97%@[1300,0] VIC_FREQ 729 APE 174 CV0@-256C CPU@47.281C GPU@42.125C tj@47.281C \
VDD_GPU_SOC 9776mW/9776mW VDD_CPU_CV 1397mW/1397mW VIN_SYS_5V0 4522mW/4522mW"
  sleep 0.05
done
"""
NVPMODEL_CONF = "< POWER_MODEL ID=0 NAME=MAXN >\n< POWER_MODEL ID=1 NAME=MODE_15W >\n"


def python38() -> str | None:
    """A real Python 3.8 interpreter if this machine has one (JetPack 5's Python)."""
    candidates = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.8*/bin/python3.8")))
    candidates += ["/usr/bin/python3.8", "/usr/local/bin/python3.8"]  # real binaries, not pyenv shims
    return next((c for c in candidates if os.access(c, os.X_OK)), None)


def conv_model(path: Path, channels: int, kind: str, opset: int = 17) -> Path:
    """input -> Conv(3 -> channels) -> Relu -> GlobalAveragePool -> output, dynamic batch; fp16 (casts and fp16
    weights), int8 (Q/DQ on the input and weights) or fp32."""
    rng = np.random.default_rng(channels)
    w = rng.standard_normal((channels, 3, 3, 3)).astype(np.float32)
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 16, 16])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", channels, 1, 1])
    nodes, inits = [], []
    src = "input"
    if kind == "fp16":
        inits.append(numpy_helper.from_array(w.astype(np.float16), "w"))
        nodes.append(helper.make_node("Cast", ["input"], ["xh"], to=TensorProto.FLOAT16))
        src = "xh"
    elif kind == "int8":
        inits += [
            numpy_helper.from_array(w, "wf"),
            helper.make_tensor("s", TensorProto.FLOAT, [], [0.05]),
            helper.make_tensor("z", TensorProto.INT8, [], [0]),
        ]
        nodes += [
            helper.make_node("QuantizeLinear", ["input", "s", "z"], ["xq"]),
            helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
            helper.make_node("QuantizeLinear", ["wf", "s", "z"], ["wq"]),
            helper.make_node("DequantizeLinear", ["wq", "s", "z"], ["w"]),
        ]
        src = "xd"
    else:
        inits.append(numpy_helper.from_array(w, "w"))
    nodes += [
        helper.make_node("Conv", [src, "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p" if kind == "fp16" else "output"]),
    ]
    if kind == "fp16":
        nodes.append(helper.make_node("Cast", ["p"], ["output"], to=TensorProto.FLOAT))
    graph = helper.make_graph(nodes, "tiny", [x], [y], initializer=inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), path)
    return path


def model_pair(folder: Path, precisions: tuple[str, ...], opset: int = 17) -> dict[str, dict[str, Path]]:
    folder.mkdir(parents=True, exist_ok=True)
    return {
        model: {p: conv_model(folder / f"{model}.{p}.onnx", ch, p, opset) for p in precisions}
        for model, ch in (("dense", 64), ("pruned", 16))
    }


def board_tools(folder: Path, trt_version: str, *, dla_cores: int = 2, power_mode: str = "MAXN") -> dict[str, str]:
    """A bin/ of stand-ins (trtexec of ``trt_version``, nvpmodel, jetson_clocks, tegrastats), a board root
    with /etc/nvpmodel.conf and /proc/device-tree/model, and the environment to run a bundle with."""
    bin_dir = folder / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    trtexec = bin_dir / "trtexec"
    trtexec.write_text(f"#!{sys.executable}\n" + (HERE / "standin_trtexec.py").read_text())
    for name, text in (
        ("trtexec", None),
        ("nvpmodel", NVPMODEL),
        ("jetson_clocks", JETSON_CLOCKS),
        ("tegrastats", TEGRASTATS),
    ):
        path = bin_dir / name
        if text is not None:
            path.write_text(text)
        path.chmod(0o755)
    root = folder / "root"
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "proc/device-tree").mkdir(parents=True, exist_ok=True)
    (root / "etc/nvpmodel.conf").write_text(NVPMODEL_CONF)
    (root / "etc/nv_tegra_release").write_text(
        "# R36 (release), REVISION: 4.3, GCID: 1, BOARD: generic, EABI: aarch64\n"
    )
    (root / "proc/device-tree/model").write_bytes(b"NVIDIA Jetson AGX Orin Developer Kit\x00")
    return {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "STANDIN_TRT_VERSION": trt_version,
        "STANDIN_DLA_CORES": str(dla_cores),
        "STANDIN_POWER_MODE": power_mode,
        "STANDIN_LOG": str(folder / "trtexec_calls.jsonl"),
        "PYTHON": python38() or sys.executable,
        "ROOT": str(root),
    }


def run_bundle(bundle: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    assert BASH is not None
    args = [BASH, str(bundle / "build_and_bench.sh"), "--root", env["ROOT"], "--rounds", "2", *extra]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
