"""``tools/trt_mutations.py`` (``make mutation-check``) must keep matching the code it mutates: each planted
contract bug replaces text found exactly once in the package. The mutation run itself is its own make target."""

from __future__ import annotations

from pathlib import Path

from tools.trt_mutations import MUTATIONS, check_patterns


def test_every_mutation_targets_text_found_once() -> None:
    assert check_patterns() == []
    assert {"logger-skips-base-init", "profile-not-added", "io-always-float32", "output-address-never-set"} <= {
        m.name for m in MUTATIONS
    }


def test_a_stale_mutation_is_reported(tmp_path: Path) -> None:
    for m in MUTATIONS:
        (tmp_path / m.path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / m.path).write_text("# nothing to mutate here\n", encoding="utf-8")
    assert len(check_patterns(tmp_path)) == len(MUTATIONS)
