"""The bench JSON schema: a valid draft 2020-12 schema, shipped with the package, and strict where it matters."""

from __future__ import annotations

import configparser
import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from cosep_deploy.bench.schema import bench_schema, validate_bench_json
from cosep_deploy.errors import BenchError

_RESULT = {
    "iterations": 5,
    "median_ms": 1.0,
    "mean_ms": 1.1,
    "std_ms": 0.1,
    "min_ms": 0.9,
    "max_ms": 1.4,
    "p90_ms": 1.3,
    "p95_ms": 1.35,
    "p99_ms": 1.39,
    "throughput_ips": 1000.0,
    "times_ms": [1.0] * 5,
}
_SPEEDUP = {
    "speedup": 2.0,
    "ci_low": 1.9,
    "ci_high": 2.1,
    "level": 0.95,
    "resamples": 100,
    "pairs": 5,
    "estimator": "ratio of medians, pair bootstrap",
    "median_paired_ratio": 2.0,
}


def _minimal() -> dict[str, Any]:
    """A hand-written latency-mode report with the fields the schema requires."""
    engine = {
        "info": {
            "backend": "onnxruntime",
            "runtime_version": "1",
            "device": "cpu",
            "precision": "fp32",
            "settings": {},
            "input_names": ["x"],
        },
        "macs": None,
        "memory": None,
        "results": {"1": _RESULT},
    }
    report = {
        "schema": "BenchReport",
        "schema_version": 2,
        "baseline": "dense",
        "mode": "latency",
        "seconds": 1.0,
        "input_shape": [3, 8, 8],
        "settings": {"backend": "onnxruntime", "runtime_version": "1", "device": "cpu", "precision": "fp32"},
        "config": {"batch_sizes": [1], "warmup": 0, "iterations": 5, "min_seconds": 0.0, "mode": "latency", "seed": 0},
        "environment": {
            "platform": "Linux",
            "machine": "x86_64",
            "python": "3.11",
            "cpu_model": "cpu",
            "cpu_flags": [],
            "cpu_count": 2,
            "libraries": {},
        },
        "engines": {"dense": engine, "pruned": copy.deepcopy(engine)},
        "speedups": {"pruned": {"1": _SPEEDUP}},
    }
    return copy.deepcopy(report)  # every case edits its own copy


def test_schema_is_valid_and_shipped_as_package_data() -> None:
    schema = bench_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    setup = configparser.ConfigParser()
    setup.read(Path(__file__).parents[2] / "setup.cfg")
    assert "bench.schema.json" in setup["options.package_data"]["cosep_deploy.bench"]


def test_minimal_report_validates_and_mistakes_are_named() -> None:
    assert validate_bench_json(_minimal(), required=True)
    cases = [
        (("mode",), "fast", "mode"),
        (("schema_version",), 1, "schema_version"),
        (("engines", "dense", "results", "1", "p99_ms"), -1.0, "engines/dense/results/1/p99_ms"),
        (("speedups", "pruned", "1", "ci_low"), 0, "speedups/pruned/1/ci_low"),
        (("engines", "dense", "memory"), {"rss": "big"}, "engines/dense/memory/rss"),
    ]
    for path, value, where in cases:
        data = _minimal()
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        with pytest.raises(BenchError, match=f"at {where}"):
            validate_bench_json(data, required=True)
    data = _minimal()
    data["engines"]["dense"]["results"] = {"0": _RESULT}  # batch sizes are positive integers
    with pytest.raises(BenchError, match="engines/dense/results"):
        validate_bench_json(data, required=True)
    data = _minimal()
    del data["speedups"]["pruned"]["1"]["pairs"]
    with pytest.raises(BenchError, match="'pairs' is a required property"):
        validate_bench_json(data, required=True)
