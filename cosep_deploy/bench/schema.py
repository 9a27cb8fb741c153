"""The bench JSON's schema (``bench.schema.json``, JSON Schema draft 2020-12) and its check.

The schema ships with the package. ``jsonschema`` is a development dependency: when it is importable, every
report is validated before it is written; without it, the check is skipped (the tests always run it).
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from cosep_deploy.errors import BenchError

__all__ = ["bench_schema", "validate_bench_json"]


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
