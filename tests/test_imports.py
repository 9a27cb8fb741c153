"""Every module imports on its own; the CLI's help never loads a heavy or optional library; no import cycles."""

from __future__ import annotations

import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from click.testing import CliRunner

import cosep_deploy
from cosep_deploy.cli.main import cli

PACKAGE = Path(cosep_deploy.__file__).parent
OPTIONAL = ("tensorrt", "torch_tensorrt", "pycuda", "cuda", "modelopt")
# what `--help` must not pay for (each costs from a tenth of a second to seconds at start-up)
HEAVY = ("torch", "torchvision", "onnxruntime", "onnx", "scipy", "matplotlib", "sklearn", "torch_pruning", *OPTIONAL)


def _module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _all_modules() -> list[str]:
    return sorted(_module_name(p) for p in PACKAGE.rglob("*.py") if p.name != "__main__.py")


def test_every_module_imports_alone_in_a_fresh_interpreter() -> None:
    def attempt(name: str) -> tuple[str, str] | None:
        done = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True)
        return None if done.returncode == 0 else (name, done.stderr.strip().splitlines()[-1])

    with ThreadPoolExecutor(max_workers=2) as pool:
        failures = [f for f in pool.map(attempt, _all_modules()) if f is not None]
    assert failures == []


def _import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> package modules it imports anywhere in its body (function-level imports included)."""
    files = {_module_name(p, root): p for p in root.rglob("*.py") if p.name != "__main__.py"}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            found |= {t for t in targets if t in files and t != name}
        graph[name] = found
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    return cycles


def test_no_import_cycles_even_through_function_level_imports() -> None:
    assert _cycles(_import_graph(PACKAGE)) == []


def test_the_cycle_check_finds_a_planted_cycle(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from pkg import b\n")  # lazy: still a cycle
    (pkg / "b.py").write_text("from .a import f\n")
    (pkg / "c.py").write_text("import pkg.a\n")
    graph = _import_graph(pkg)
    assert graph == {"pkg": set(), "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a"}, "pkg.c": {"pkg.a"}}
    assert _cycles(graph) == [["pkg.a", "pkg.b", "pkg.a"]]


def _loaded_after(args: list[str]) -> tuple[int, list[str]]:
    code = (
        "import sys\n"
        "from cosep_deploy.cli.main import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        f"print('LOADED=' + ','.join(sorted({{k.split('.')[0] for k in sys.modules}} & set({HEAVY!r}))))\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    line = next(x for x in done.stdout.splitlines() if x.startswith("LOADED="))
    return done.returncode, [m for m in line.removeprefix("LOADED=").split(",") if m]


def test_help_of_the_cli_and_of_every_command_loads_nothing_heavy() -> None:
    commands = [[], *([name] for name in sorted(cli.commands))]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda c: (c, *_loaded_after([*c, "--help"])), commands))
    assert [(c, code) for c, code, _ in results if code != 0] == []
    assert [(c, heavy) for c, _, heavy in results if heavy] == []


def test_the_heavy_import_check_can_fail() -> None:
    code, loaded = _loaded_after(["--version"])
    assert code == 0 and loaded == []
    done = subprocess.run(
        [sys.executable, "-c", "import sys, cosep_deploy.distributed; print(sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "'torch'" in done.stdout  # the same probe sees torch when a module does load it


def test_every_command_has_help() -> None:
    runner = CliRunner()
    assert set(cli.commands) >= {"train", "prune", "finetune", "export", "build", "bench", "report", "pipeline"}
    for name in cli.commands:
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert "Usage:" in result.output


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert cosep_deploy.__version__ in result.output
