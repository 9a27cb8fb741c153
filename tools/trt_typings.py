"""Make the ``tensorrt-stubs`` wheel usable by mypy (run by ``make``; writes only under .venv/).

The wheel (10.13.0.35.1) installs ``tensorrt/__init__.pyi`` and ``tensorrt_bindings/*.pyi`` as plain
packages without a ``py.typed`` marker, so mypy refuses them, and three signatures in its generated
``tensorrt.pyi`` are not valid Python (a parameter named ``in``; a non-default parameter after
defaults). This copies the two stub packages into ``.venv/typings`` (on mypy's path, see
pyproject.toml), renaming ``in`` to ``in_`` and giving the one misplaced parameter a default. Nothing
of the stubs is committed to this repository.
"""

from __future__ import annotations

import re
import shutil
import sys
import sysconfig
from pathlib import Path

FIXES = [
    (re.compile(r"([(,] ?)in: "), r"\1in_: "),
    (re.compile(r"power: Weights = None, channel_axis: int\)"), "power: Weights = None, channel_axis: int = 0)"),
]


def main(out: str) -> int:
    site = Path(sysconfig.get_paths()["purelib"])
    target = Path(out)
    if not (site / "tensorrt" / "__init__.pyi").is_file():
        print(f"tensorrt-stubs not installed in {site}; nothing to do", file=sys.stderr)
        return 1
    shutil.rmtree(target, ignore_errors=True)
    for package in ("tensorrt", "tensorrt_bindings"):
        for stub in (site / package).glob("*.pyi"):
            text = stub.read_text(encoding="utf-8")
            for pattern, repl in FIXES:
                text = pattern.sub(repl, text)
            dest = target / package / stub.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ".venv/typings"))
