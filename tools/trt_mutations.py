"""Prove the TensorRT tests catch contract bugs: plant each in a copy of the package and see the tests fail.

For every mutation in :data:`MUTATIONS`, the package and tests are copied to a temporary directory, one exact
piece of source is replaced by a buggy one (TensorRT's documented contracts broken the way real code breaks
them), and the TensorRT test files run on the copy. The check passes only if the unmutated copy passes and
every mutated copy fails. Run by ``make mutation-check`` (part of ``make test``); takes well under a minute.

    python tools/trt_mutations.py [--only NAME ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRT = "cosep_deploy/backends/tensorrt"
TEST_FILES = (
    "tests/backends/test_tensorrt_engine.py",
    "tests/backends/test_tensorrt_cache.py",
    "tests/backends/test_trt_double.py",
    "tests/backends/test_tensorrt.py",
)


@dataclasses.dataclass(frozen=True)
class Mutation:
    name: str
    what: str
    path: str
    old: str
    new: str


MUTATIONS = (
    Mutation(
        "logger-skips-base-init",
        "a logger subclass that skips ILogger.__init__",
        f"{TRT}/runner.py",
        "            trt.ILogger.__init__(self)",
        "            pass",
    ),
    Mutation(
        "profile-not-added",
        "an optimization profile built but never added to the config",
        f"{TRT}/engine.py",
        "        bconfig.add_optimization_profile(profile)",
        "        pass",
    ),
    Mutation(
        "io-always-float32",
        "every IO tensor treated as float32",
        f"{TRT}/runner.py",
        "self._dtypes = {n: np.dtype(trt.nptype(engine.get_tensor_dtype(n))) for n in names}",
        "self._dtypes = {n: np.dtype(np.float32) for n in names}",
    ),
    Mutation(
        "output-address-never-set",
        "an output address never set",
        f"{TRT}/runner.py",
        "            context.set_tensor_address(name, self._buffer(name, outputs[name].nbytes))",
        "            self._buffer(name, outputs[name].nbytes)",
    ),
    Mutation(
        "global-capture-mode",
        "CUDA graphs captured in global mode, unlike trtexec",
        f"{TRT}/cuda.py",
        "cudaStreamCaptureModeThreadLocal\n",
        "cudaStreamCaptureModeGlobal\n",
    ),
    Mutation(
        "dla-core-not-on-runtime",
        "a DLA engine deserialised without Runtime.DLA_core",
        f"{TRT}/runner.py",
        "            self._runtime.DLA_core = dla_core",
        "            pass",
    ),
)


def check_patterns(root: Path = ROOT) -> list[str]:
    """Mutations whose original text is not found exactly once (the tool must follow the code it mutates)."""
    bad = []
    for m in MUTATIONS:
        count = (root / m.path).read_text(encoding="utf-8").count(m.old)
        if count != 1:
            bad.append(f"{m.name}: {m.path} holds the original text {count} times (expected 1)")
    return bad


def _copy(dest: Path) -> None:
    for folder in ("cosep_deploy", "tests"):
        shutil.copytree(ROOT / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "pyproject.toml", dest / "pyproject.toml")
    venv = ROOT / ".venv"
    if venv.exists():
        (dest / ".venv").symlink_to(venv.resolve())  # the stubs under .venv/typings


def _pytest(root: Path) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *TEST_FILES]
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=600, check=False)
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    return proc.returncode, lines[-1] if lines else ""


def run(only: list[str] | None = None) -> int:
    problems = check_patterns()
    if problems:
        print("\n".join(problems))
        return 1
    chosen = [m for m in MUTATIONS if not only or m.name in only]
    failed = 0
    with tempfile.TemporaryDirectory(prefix="trt-mutations.") as tmp:
        base = Path(tmp) / "copy"
        _copy(base)
        start = time.perf_counter()
        code, summary = _pytest(base)
        print(f"unmutated copy: {'passes' if code == 0 else 'FAILS'} ({summary}, {time.perf_counter() - start:.0f} s)")
        if code != 0:
            return 1
        for m in chosen:
            target = base / m.path
            original = target.read_text(encoding="utf-8")
            target.write_text(original.replace(m.old, m.new), encoding="utf-8")
            try:
                code, summary = _pytest(base)
            finally:
                target.write_text(original, encoding="utf-8")
            caught = code != 0
            failed += not caught
            print(f"{m.name} ({m.what}): {'caught' if caught else 'NOT CAUGHT'} ({summary})")
    print(f"{len(chosen) - failed}/{len(chosen)} planted contract bugs caught")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="mutation names to run (default: all)")
    args = parser.parse_args(argv)
    return run(args.only)


if __name__ == "__main__":
    sys.exit(main())
