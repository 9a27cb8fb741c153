"""The TensorRT double against the ``tensorrt-stubs``, and the package's TensorRT names against the stubs.

Two directions: the double declares nothing the stubs do not (names, parameter names, property-or-method), so a
call that passes on the double exists on TensorRT; and every ``trt.<name>`` the package reads, and every name it
probes with ``hasattr``, is in the stubs (mypy checks the typed calls; these are the ones looked up by name).
Then the double's contracts are exercised directly: each must refuse what TensorRT refuses.
"""

from __future__ import annotations

import ast
import enum
import inspect
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cosep_deploy.backends.tensorrt.plan import OnnxSummary, TensorRTBuildConfig, plan_build, trt_capabilities
from cosep_deploy.errors import ConfigError
from tests.backends.trt_double import RELEASES, install_double, make_double

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_TRT = ROOT / "cosep_deploy" / "backends" / "tensorrt"


class Stubs:
    """The mypy-usable copy of the 10.13 stubs (tools/trt_typings.py): module names, class members, signatures."""

    def __init__(self) -> None:
        with (ROOT / "pyproject.toml").open("rb") as fh:
            typings = ROOT / tomllib.load(fh)["tool"]["mypy"]["mypy_path"]
        stub = typings / "tensorrt_bindings" / "tensorrt.pyi"
        if not stub.is_file():
            pytest.skip(f"{stub} missing: run tools/trt_typings.py (make venv)")
        init = ast.parse((typings / "tensorrt" / "__init__.pyi").read_text(encoding="utf-8"))
        self.module = {a.asname or a.name for n in init.body if isinstance(n, ast.ImportFrom) for a in n.names}
        self.module |= {n.name for n in init.body if isinstance(n, ast.FunctionDef | ast.ClassDef)}
        self.members: dict[str, set[str]] = {}
        self.properties: dict[str, set[str]] = {}
        self.signatures: dict[tuple[str, str], list[tuple[list[str], int]]] = {}
        for node in ast.parse(stub.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef):
                self._read_class(node)

    def _read_class(self, node: ast.ClassDef) -> None:
        members, props = set(), set()
        for b in node.body:
            if isinstance(b, ast.FunctionDef):
                members.add(b.name)
                if any(ast.unparse(d) == "property" for d in b.decorator_list):
                    props.add(b.name)
                    continue
                args = [a.arg for a in b.args.args][1:]  # drop self
                required = len(args) - len(b.args.defaults)
                self.signatures.setdefault((node.name, b.name), []).append((args, required))
            elif isinstance(b, ast.AnnAssign) and isinstance(b.target, ast.Name):
                members.add(b.target.id)
                props.add(b.target.id)
            elif isinstance(b, ast.ClassDef):
                members.add(b.name)
        self.members[node.name], self.properties[node.name] = members, props

    def everywhere(self) -> set[str]:
        return self.module | set().union(*self.members.values())


@pytest.fixture(scope="module")
def stubs() -> Stubs:
    return Stubs()


def _surface_problems(stubs: Stubs, trt: Any) -> list[str]:
    problems = []
    for name, value in vars(trt).items():
        if name.startswith("__") or name.startswith("_"):
            continue
        if name not in stubs.module:
            problems.append(f"tensorrt.{name}: not in the stubs")
            continue
        if isinstance(value, type) and issubclass(value, enum.Enum):
            problems += [f"{name}.{m}" for m in value.__members__ if m not in stubs.members[name]]
        elif isinstance(value, type):
            problems += _class_problems(stubs, name, value)
        elif callable(value):
            problems += _params(stubs, "", name, value, [(["trt_type"], 1)] if name == "nptype" else [])
    return problems


def _class_problems(stubs: Stubs, name: str, cls: type) -> list[str]:
    problems = []
    skip = ("_world", "__module__", "__doc__", "__qualname__", "__dict__", "__weakref__")
    own = {k: v for k, v in vars(cls).items() if k not in skip}
    for attr, value in own.items():
        if attr.startswith("_") and not (attr.startswith("__") and attr != "__init__"):
            continue  # the double's own state
        if attr.startswith("__") and attr not in ("__init__",) and attr not in stubs.members[name]:
            if attr in ("__hash__", "__annotations__", "__firstlineno__", "__static_attributes__"):
                continue
            problems.append(f"{name}.{attr}: not in the stubs")
            continue
        if attr == "__init__" and "__init__" not in stubs.members[name]:
            continue  # built by TensorRT itself (no public constructor); the package never calls it
        if attr not in stubs.members[name]:
            problems.append(f"{name}.{attr}: not in the stubs")
        elif isinstance(value, property) != (attr in stubs.properties[name]) and not isinstance(value, type):
            if not (attr in stubs.properties[name] and not callable(value)):  # plain class attribute = AnnAssign
                problems.append(f"{name}.{attr}: property/method differs from the stubs")
        elif callable(value) and not isinstance(value, type) and (attr == "__init__" or not attr.startswith("__")):
            problems += _params(stubs, name, attr, value, stubs.signatures.get((name, attr), []))
    return problems


def _params(stubs: Stubs, cls: str, attr: str, fn: Any, sigs: list[tuple[list[str], int]]) -> list[str]:
    params = [p.name for p in inspect.signature(fn).parameters.values()]
    params = params[1:] if params and params[0] == "self" else params
    if any(sig[: len(params)] == params and len(params) >= required for sig, required in sigs):
        return []
    return [f"{cls}.{attr}{tuple(params)}: no stub signature matches {[s for s, _ in sigs]}"]


@pytest.mark.parametrize("release", sorted(RELEASES))
def test_double_declares_nothing_the_stubs_lack(stubs: Stubs, release: str) -> None:
    trt = make_double(release)[0]
    assert _surface_problems(stubs, trt) == []


def test_surface_check_catches_a_name_the_stubs_lack(stubs: Stubs) -> None:
    """The check itself can fail: a member, a parameter name and a module name the stubs do not have."""
    trt = make_double("10.13")[0]
    trt.IBuilderConfig.set_flags = lambda self, flags: None  # TensorRT has set_flag, not set_flags
    trt.Builder.create_network = lambda self, flag=0: None  # parameter is "flags"
    trt.build_engine = lambda network: None  # removed in 10.0
    problems = _surface_problems(stubs, trt)
    assert any("set_flags" in p for p in problems) and any("create_network" in p for p in problems)
    assert any("build_engine" in p for p in problems)


def _package_trt_names() -> tuple[set[str], set[tuple[str, str]], set[str]]:
    """``trt.X`` and ``trt.X.Y`` read by the package's TensorRT modules, and names probed with hasattr."""
    module, nested, probed = set(), set(), set()
    for path in PACKAGE_TRT.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "trt":
                module.add(node.attr)
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Attribute)
                and isinstance(node.value.value, ast.Name)
                and node.value.value.id == "trt"
            ):
                nested.add((node.value.attr, node.attr))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "hasattr":
                arg = node.args[1] if len(node.args) == 2 else None
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    probed.add(arg.value)
    return module, nested, probed


def test_package_reads_only_names_the_stubs_declare(stubs: Stubs) -> None:
    module, nested, probed = _package_trt_names()
    assert {"Builder", "Runtime", "OnnxParser", "ILogger"} <= module  # the scan found the package's uses
    assert module - {"__version__"} <= stubs.module, module - stubs.module
    assert all(attr in stubs.members[cls] for cls, attr in nested), [
        n for n in nested if n[1] not in stubs.members[n[0]]
    ]
    assert "device_memory_size_v2" in probed and probed <= stubs.everywhere(), probed - stubs.everywhere()


def test_flag_names_the_plan_can_produce_exist_in_the_stubs(stubs: Stubs, monkeypatch: pytest.MonkeyPatch) -> None:
    network: set[str] = set()
    builder: set[str] = set()
    both = OnnxSummary(inputs={"x": (1, 4)}, has_qdq=True, has_fp16=True)
    for release in RELEASES:
        install_double(monkeypatch, release)
        caps = trt_capabilities()
        for precision in ("fp32", "fp16", "int8"):
            for typed in ("auto", True, False):
                config = TensorRTBuildConfig(
                    precision=precision, strongly_typed=typed, dla_core=None if precision == "fp32" else 0
                )
                try:
                    plan = plan_build(caps, config, both)
                except ConfigError:
                    continue  # that release refuses that choice
                network.update(plan.network_flags)
                builder.update(plan.builder_flags)
    assert network == {"STRONGLY_TYPED", "EXPLICIT_BATCH"} and builder == {"FP16", "INT8", "GPU_FALLBACK"}
    assert network <= stubs.members["NetworkDefinitionCreationFlag"] and builder <= stubs.members["BuilderFlag"]


# ----------------------------------------------------------------------------- the double refuses what TensorRT does


def _logger(trt: Any, init: bool = True) -> Any:
    class Logger(trt.ILogger):  # type: ignore[name-defined,misc]
        def __init__(self) -> None:
            if init:
                trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity: Any, msg: str) -> None:
            self.errors.append(msg)

    return Logger()


def _network(trt: Any, tmp_path: Path, batch: int | str) -> tuple[Any, Any, Any]:
    from tests.backends.test_tensorrt_engine import conv_onnx

    logger = _logger(trt)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    assert trt.OnnxParser(network, logger).parse_from_file(str(conv_onnx(tmp_path / "m.onnx", batch=batch)))
    return builder, network, logger


def test_double_logger_must_initialise_its_base() -> None:
    trt = make_double("10.13")[0]
    with pytest.raises(TypeError, match=r"__init__\(\) must be called when overriding __init__"):
        _logger(trt, init=False)
    with pytest.raises(TypeError, match="incompatible constructor arguments"):
        trt.Builder(object())


def test_double_dynamic_inputs_need_a_valid_profile_in_the_config(tmp_path: Path) -> None:
    trt = make_double("10.13")[0]
    builder, network, logger = _network(trt, tmp_path, "batch")
    config = builder.create_builder_config()
    assert builder.build_serialized_network(network, config) is None
    assert "no optimization profile has been defined" in logger.errors[-1]
    profile = builder.create_optimization_profile()
    profile.set_shape("input", trt.Dims([4, 2, 5, 5]), trt.Dims([2, 2, 5, 5]), trt.Dims([8, 2, 5, 5]))  # min > opt
    assert config.add_optimization_profile(profile) == -1
    good = builder.create_optimization_profile()
    good.set_shape("input", trt.Dims([1, 2, 5, 5]), trt.Dims([2, 2, 5, 5]), trt.Dims([4, 2, 5, 5]))
    assert config.add_optimization_profile(good) == 0
    assert builder.build_serialized_network(network, config) is not None
    with pytest.raises(AttributeError, match="no attribute 'max_batch_size'"):
        config.max_batch_size = 8  # removed in 10.0: pybind11 objects refuse undeclared attributes
    config.set_flag(trt.BuilderFlag.FP16)
    assert builder.build_serialized_network(network, config) is None  # precision flag on a typed network
    assert "strongly typed" in logger.errors[-1]


def test_double_execution_contracts(tmp_path: Path) -> None:
    trt, rt, gpu = make_double("10.13")
    builder, network, logger = _network(trt, tmp_path, 2)
    plan = builder.build_serialized_network(network, builder.create_builder_config())
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    context = engine.create_execution_context()
    assert not context.set_input_shape("output", (2, 3, 5, 5))  # not an input
    assert not context.set_input_shape("input", (3, 2, 5, 5))  # the network fixes batch 2
    assert context.set_input_shape("input", (2, 2, 5, 5))
    _, stream = rt.cudaStreamCreate()
    _, x_ptr = rt.cudaMalloc(2 * 2 * 25 * 4)
    context.set_tensor_address("input", x_ptr)
    assert not context.execute_async_v3(int(stream))
    assert "address is not set for tensor 'output'" in logger.errors[-1]
    _, small = rt.cudaMalloc(4)
    context.set_tensor_address("output", small)
    assert not context.execute_async_v3(int(stream)) and "illegal memory access" in logger.errors[-1]
    _, y_ptr = rt.cudaMalloc(2 * 3 * 25 * 4)
    context.set_tensor_address("output", y_ptr)
    assert context.execute_async_v3(int(stream)) and gpu.executions == 1
    assert trt.nptype(engine.get_tensor_dtype("output")) is np.float32
    other = make_double("10.3")[0]
    assert other.Runtime(_logger(other)).deserialize_cuda_engine(plan) is None  # another release's plan
