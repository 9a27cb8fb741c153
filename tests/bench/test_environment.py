"""The environment recorded with every bench result, and the refusal to compare results from different ones."""

from __future__ import annotations

import copy
from importlib import metadata
from typing import Any

import pytest

from cosep_deploy.bench.compat import check_reports_comparable
from cosep_deploy.bench.environment import NVIDIA_SMI_QUERY, describe_environment, parse_nvidia_smi
from cosep_deploy.errors import BenchError

# the documented csv,noheader,nounits format of NVIDIA_SMI_QUERY on a two-GPU machine (one field unsupported)
SMI = """NVIDIA H100 80GB HBM3, 570.86.15, 1980, 2619, 1980, 2619, 700.00, Enabled, P0
NVIDIA RTX A2000, 570.86.15, 210, 405, 2100, 6001, [N/A], Disabled, P8
"""


def test_nvidia_smi_query_and_parse() -> None:
    assert NVIDIA_SMI_QUERY[1].startswith("--query-gpu=name,driver_version,clocks.sm,clocks.mem,clocks.max.sm")
    h100, a2000 = parse_nvidia_smi(SMI)
    assert h100 == {
        "name": "NVIDIA H100 80GB HBM3",
        "driver_version": "570.86.15",
        "clocks_sm_mhz": 1980.0,
        "clocks_mem_mhz": 2619.0,
        "clocks_max_sm_mhz": 1980.0,
        "clocks_max_mem_mhz": 2619.0,
        "power_limit_w": 700.0,
        "persistence_mode": "Enabled",
        "pstate": "P0",
    }
    assert a2000["power_limit_w"] is None and a2000["pstate"] == "P8"
    assert parse_nvidia_smi("No devices were found\n") == []


def test_describe_environment_here(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    env = describe_environment()
    assert env["cpu_count"] >= 1 and env["cpu_model"] and "onnxruntime" in env["libraries"]
    assert env["gpus"] == [] and env["jetson"] is None  # this machine has neither
    assert env["threads"]["env"]["OMP_NUM_THREADS"] == "3"
    assert env["threads"]["torch_intra_op"] == torch.get_num_threads()
    assert env["libraries"]["onnxruntime"] == metadata.version("onnxruntime")


def _report(**env: Any) -> dict[str, Any]:
    base = {
        "settings": {
            "backend": "onnxruntime",
            "runtime_version": "1.31.1",
            "device": "cpu",
            "precision": "fp32",
            "intra_op_threads": 2,
        },
        "mode": "latency",
        "input_shape": [3, 32, 32],
        "environment": {
            "cpu_model": "Xeon",
            "cpus_usable": 2,
            "libraries": {"onnxruntime": "1.31.1"},
            "gpus": [],
            "jetson": None,
        },
    }
    base["environment"].update(env)
    return base


def test_saved_results_from_different_conditions_are_refused() -> None:
    check_reports_comparable({"a": _report(), "b": _report(python="other")})  # irrelevant fields may differ
    with pytest.raises(BenchError, match="cpu_model: 'Xeon' vs 'EPYC'"):
        check_reports_comparable({"a": _report(), "b": _report(cpu_model="EPYC")})
    threads = copy.deepcopy(_report())
    threads["settings"]["intra_op_threads"] = 1
    with pytest.raises(BenchError, match="intra_op_threads"):
        check_reports_comparable({"a": _report(), "b": threads})
    gpu = {
        "name": "Orin",
        "driver_version": "540",
        "clocks_max_sm_mhz": 1300.0,
        "clocks_max_mem_mhz": 3200.0,
        "power_limit_w": None,
    }
    slow = {**gpu, "clocks_max_sm_mhz": 624.0}
    with pytest.raises(BenchError, match="clocks_max_sm_mhz"):
        check_reports_comparable({"a": _report(gpus=[gpu]), "b": _report(gpus=[slow])})
    maxn = {"board": {}, "power": {"nvpmodel_mode": "MAXN", "clocks": "locked"}}
    w15 = {"board": {}, "power": {"nvpmodel_mode": "15W", "clocks": "locked"}}
    with pytest.raises(BenchError, match="jetson_power_mode: 'MAXN' vs '15W'"):
        check_reports_comparable({"a": _report(jetson=maxn), "b": _report(jetson=w15)})
