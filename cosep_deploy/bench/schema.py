"""The bench JSON's schema (``bench.schema.json``, JSON Schema draft 2020-12) and its check.

The schema ships with the package. ``jsonschema`` is a development dependency: when it is importable, every
report is validated before it is written; without it, the check is skipped (the tests always run it).
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from pathlib import Path
from typing import Any

from cosep_deploy.errors import ArtifactError, BenchError

__all__ = ["bench_schema", "check_bench_json", "validate_bench_json"]

_SPEEDUP_TOLERANCE = 1e-6  # relative: the speed-up is computed from the very medians it is stored beside


@functools.cache
def bench_schema() -> dict[str, Any]:
    text = resources.files("cosep_deploy.bench").joinpath("bench.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def validate_bench_json(data: Any, *, required: bool = False) -> bool:
    """Check ``data`` (a bench report as JSON) against the schema; True if checked, False if jsonschema is
    not installed (an error then only if ``required``). A report that does not conform raises BenchError."""
    try:
        import jsonschema
    except ImportError:
        if required:
            raise BenchError("validating bench JSON needs jsonschema: pip install jsonschema") from None
        return False
    validator = jsonschema.Draft202012Validator(bench_schema())
    errors = sorted(validator.iter_errors(json.loads(json.dumps(data, default=str))), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top level)"
        raise BenchError(f"bench JSON does not match its schema at {where}: {first.message}")
    return True


def _num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value  # not NaN


def _first_problem(data: Any) -> str | None:
    """The first structural problem or contradiction of a bench report read back from a file."""
    if not isinstance(data, dict):
        return f"expected an object, found {type(data).__name__}"
    engines, speedups, base = data.get("engines"), data.get("speedups"), data.get("baseline")
    if not isinstance(engines, dict) or not isinstance(speedups, dict) or not isinstance(base, str):
        return "'engines', 'speedups' and 'baseline' are required"
    for name, engine in engines.items():
        results = engine.get("results") if isinstance(engine, dict) else None
        if not isinstance(results, dict) or not all(
            isinstance(r, dict) and _num(r.get("median_ms")) and r["median_ms"] > 0 for r in results.values()
        ):
            return f"engine {name!r} needs 'results' with a positive 'median_ms' per batch size"
    if base not in engines:
        return f"baseline {base!r} is not among the engines {sorted(engines)}"
    for name, per_batch in speedups.items():
        if name not in engines or not isinstance(per_batch, dict):
            return f"speed-ups of {name!r}, which is not among the engines"
        for batch, s in per_batch.items():
            ours, theirs = engines[base]["results"].get(batch), engines[name]["results"].get(batch)
            if not isinstance(s, dict) or not _num(s.get("speedup")) or ours is None or theirs is None:
                return f"speed-up of {name!r} at batch {batch} has no number or no timings beside it"
            if data.get("mode", "latency") == "latency":
                expected = ours["median_ms"] / theirs["median_ms"]
                if abs(s["speedup"] - expected) > _SPEEDUP_TOLERANCE * expected:
                    return (
                        f"speed-up {s['speedup']:.4g} of {name!r} at batch {batch} contradicts its medians "
                        f"({ours['median_ms']:.4g} / {theirs['median_ms']:.4g} ms = {expected:.4g})"
                    )
    return None


def check_bench_json(data: Any, source: str | Path) -> dict[str, Any]:
    """A bench report read from ``source``, checked (structure, and every speed-up against its medians; the
    full schema too when jsonschema is installed); returns it. Problems raise :class:`ArtifactError`."""
    problem = _first_problem(data)
    if problem is None:
        try:
            validate_bench_json({k: v for k, v in data.items() if k != "sources"})
        except BenchError as exc:
            problem = str(exc)
    if problem is not None:
        raise ArtifactError(f"{source} is not a valid benchmark report: {problem}; re-run `cosep-deploy bench`")
    return dict(data)
