"""A strict stand-in for trtexec of one TensorRT release (``STANDIN_TRT_VERSION``, e.g. "8.5.2"), for tests.

Written from trtexec's documentation and real outputs, not from cosep-deploy's code: it refuses the flags the
release lacks (``[E] Unknown option`` and ``&&&& FAILED``, as trtexec does), ONNX opsets past that release's
parser and operators it cannot import, loads only engines of its own release and device, honours the DLA
rules (a core the device has, static shapes, ``--useDLACore`` to run a DLA engine), and writes trtexec's
output formats: the banner, device information, "Engine built in", the performance summary, and the
``--exportTimes``, ``--exportProfile`` and ``--exportLayerInfo`` JSON of that release (11.x: no "Bindings",
"Format" and "Datatype" split). Timings are synthetic and deterministic: GPU compute time grows with the
engine's weight count and batch, so a pruned model is faster. Device: ``STANDIN_DEVICE`` ("Orin"),
``STANDIN_CC`` ("8.7"), ``STANDIN_DLA_CORES`` ("2"). Every invocation is appended to ``STANDIN_LOG``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import sys

VERSION = tuple(int(x) for x in os.environ["STANDIN_TRT_VERSION"].split("."))
V = ((*VERSION, 0, 0))[:3]
DEVICE = os.environ.get("STANDIN_DEVICE", "Orin")
CC = os.environ.get("STANDIN_CC", "8.7")
DLA_CORES = int(os.environ.get("STANDIN_DLA_CORES", "0"))
BANNER_NUM = V[0] * 1000 + V[1] * 100 + V[2] if V[0] < 10 else V[0] * 10000 + V[1] * 100 + V[2]
BANNER = f"[TensorRT v{BANNER_NUM}]"

# Flags per release (trtexec --help of each): 8.6 added --skipInference and --builderOptimizationLevel,
# 10.0 --stronglyTyped, 11.0 removed weak typing (--fp16/--int8/--best) and added --includeDataTransfers.
FLAGS = {
    "onnx", "saveEngine", "loadEngine", "minShapes", "optShapes", "maxShapes", "shapes", "memPoolSize",
    "timingCacheFile", "useDLACore", "allowGPUFallback", "iterations", "duration", "warmUp", "avgRuns",
    "percentile", "exportTimes", "exportProfile", "exportLayerInfo", "profilingVerbosity",
    "separateProfileRun", "useCudaGraph", "noDataTransfers", "useSpinWait", "verbose", "dumpProfile",
}  # fmt: skip
if V >= (8, 6, 0):
    FLAGS |= {"skipInference", "builderOptimizationLevel"}
if V >= (10, 0, 0):
    FLAGS |= {"stronglyTyped"}
if V < (11, 0, 0):
    FLAGS |= {"fp16", "int8", "best"}
else:
    FLAGS |= {"includeDataTransfers"}
DEPRECATED = {"separateProfileRun"} if V >= (11, 0, 0) else set()
# newest opset each release's ONNX parser reads (onnx-tensorrt docs/operators.md of the release)
MAX_OPSET = 17 if V < (10, 0, 0) else 20 if V < (10, 6, 0) else 22 if V < (10, 15, 0) else 24 if V < (11,) else 25
UNSUPPORTED_OPS = {"LayerNormalization", "GroupNormalization", "IsInf"} if V < (8, 6, 0) else set()


def out(line: str) -> None:
    print(line, flush=True)


def fail(message: str) -> None:
    out(f"[E] {message}")
    out(f"&&&& FAILED TensorRT.trtexec {BANNER} # trtexec {' '.join(sys.argv[1:])}")
    sys.exit(1)


def parse_args(argv: list[str]) -> dict[str, str]:
    args: dict[str, str] = {}
    for raw in argv:
        if not raw.startswith("--"):
            fail(f"Invalid argument: {raw}")
        name, _, value = raw[2:].partition("=")
        if name not in FLAGS:
            fail(f"Unknown option: --{name}")
        if name in DEPRECATED:
            out(f"[W] --{name} is deprecated and has no effect")
        args[name] = value
    return args


def shapes(text: str) -> dict[str, list[int]]:
    result = {}
    for part in text.split(","):
        name, _, dims = part.rpartition(":")
        result[name.strip("'")] = [int(d) for d in dims.split("x")]
    return result


def check_percentiles(args: dict[str, str]) -> list[float]:
    values = [float(p) for p in args.get("percentile", "90,95,99" if V >= (8, 6, 0) else "99").split(",")]
    if len(values) > 1 and V < (8, 6, 0):
        fail(f"Invalid value for --percentile: {args['percentile']} (one percentile in [0, 100])")
    return values


def build(args: dict[str, str]) -> dict[str, object]:
    import onnx  # the host's onnx package: the stand-in runs in the test environment

    model = onnx.load(args["onnx"])
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if opset > MAX_OPSET:
        fail(
            f"[TRT] ModelImporter: this version of the ONNX parser supports opsets up to {MAX_OPSET}, model has {opset}"
        )
    for node in model.graph.node:
        if node.op_type in UNSUPPORTED_OPS:
            fail(f"[TRT] ModelImporter.cpp: No importer registered for op: {node.op_type}")
    precision_flags = {"fp16", "int8", "best"} & set(args)
    if "stronglyTyped" in args and precision_flags:
        fail("--stronglyTyped and precision flags (--fp16/--int8/--best) cannot be used together")
    weights = sum(math.prod(t.dims) for t in model.graph.initializer)
    dynamic = any(not d.dim_value for i in model.graph.input for d in i.type.tensor_type.shape.dim[:1])
    profile = None
    if dynamic:
        if not all(k in args for k in ("minShapes", "optShapes", "maxShapes")):
            fail("Dynamic dimensions required for input: please set --minShapes/--optShapes/--maxShapes")
        lo, opt, hi = (shapes(args[k]) for k in ("minShapes", "optShapes", "maxShapes"))
        for name in lo:
            if not all(a <= b <= c for a, b, c in zip(lo[name], opt[name], hi[name], strict=False)):
                fail(f"Optimization profile for {name}: min <= opt <= max violated")
        profile = {"min": lo, "max": hi}
    dla = args.get("useDLACore")
    if dla is not None:
        if int(dla) >= DLA_CORES:
            fail(f"Cannot create DLA engine, {dla} not available (this device has {DLA_CORES} DLA cores)")
        if profile and profile["min"] != profile["max"]:
            fail("DLA does not support dynamic shapes: set --minShapes = --optShapes = --maxShapes")
    engine = {
        "release": list(V),
        "device": DEVICE,
        "weights": weights,
        "dla": dla,
        "profile": profile,
        "detailed": args.get("profilingVerbosity") == "detailed",
        "inputs": [i.name for i in model.graph.input],
        "outputs": [o.name for o in model.graph.output],
        "typed": "stronglyTyped" in args or V >= (11, 0, 0),
        "precision": sorted(precision_flags),
    }
    with open(args["saveEngine"], "wb") as fh:
        fh.write(b"STANDIN-ENGINE\n" + json.dumps(engine).encode())
    out(f"[I] Engine built in {1.5 + weights * 1e-6:.4f} sec.")
    return engine


def load(args: dict[str, str]) -> dict[str, object]:
    with open(args["loadEngine"], "rb") as fh:
        head, _, body = fh.read().partition(b"\n")
    if head != b"STANDIN-ENGINE":
        fail("Error[1]: engine deserialization failed: not an engine file")
    engine = json.loads(body)
    if tuple(engine["release"]) != V:
        got = ".".join(map(str, engine["release"]))
        fail(f"Error[6]: The engine plan file is not compatible with this version of TensorRT, expecting "
             f"library version {'.'.join(map(str, V))} got {got}, please rebuild.")  # fmt: skip
    if engine["device"] != DEVICE:
        fail("Error[6]: The engine plan file is generated on an incompatible device, please rebuild.")
    if engine["dla"] is not None and args.get("useDLACore") != engine["dla"]:
        fail(f"this engine runs on DLA core {engine['dla']}: pass --useDLACore={engine['dla']}")
    return engine


def run_inference(args: dict[str, str], engine: dict[str, object]) -> None:
    percentiles = check_percentiles(args)
    batch = 1
    if engine["profile"]:
        if "shapes" not in args:
            fail("Dynamic dimensions required for input: please set --shapes")
        for name, dims in shapes(args["shapes"]).items():
            lo, hi = engine["profile"]["min"][name], engine["profile"]["max"][name]  # type: ignore[index]
            if not all(a <= d <= c for a, d, c in zip(lo, dims, hi, strict=False)):
                fail(f"--shapes for {name} is outside the engine's optimization profile")
            batch = dims[0]
    n = max(int(args.get("iterations", "10")), 10)
    seed = int(hashlib.sha256(json.dumps([engine, args.get("exportTimes", "")]).encode()).hexdigest()[:8], 16)
    rng = random.Random(seed)
    base = 0.05 + 1e-4 * float(engine["weights"]) * batch  # type: ignore[arg-type]
    compute = [base * (1 + 0.02 * rng.random()) for _ in range(n)]
    copies = "includeDataTransfers" in args if V >= (11, 0, 0) else "noDataTransfers" not in args
    rows, t = [], 0.0
    for c in compute:
        h2d = 0.01 if copies else 0.0
        if V >= (10, 0, 0):
            row = {"startEnqMs": t, "endEnqMs": t + 0.01, "startH2dMs": t, "endH2dMs": t + h2d,
                   "startComputeMs": t + h2d, "endComputeMs": t + h2d + c, "startD2hMs": t + h2d + c,
                   "endD2hMs": t + 2 * h2d + c, "h2dMs": h2d, "computeMs": c, "d2hMs": h2d,
                   "latencyMs": c + 2 * h2d, "enqueueMs": 0.01}  # fmt: skip
        else:
            row = {"startInMs": t, "endInMs": t + h2d, "startComputeMs": t + h2d, "endComputeMs": t + h2d + c,
                   "startOutMs": t + h2d + c, "endOutMs": t + 2 * h2d + c, "inMs": h2d, "computeMs": c,
                   "outMs": h2d, "latencyMs": c + 2 * h2d, "endToEndMs": c + 2 * h2d}  # fmt: skip
        rows.append(row)
        t += c + 2 * h2d + 0.001
    if "exportTimes" in args:
        with open(args["exportTimes"], "w") as fh:
            json.dump(rows, fh)
    layers = ["Reformatting CopyNode for Input Tensor 0 to conv", "conv + relu", "gemm"]
    if "exportProfile" in args:
        prof: list[dict[str, object]] = [{"count": n}]
        for i, name in enumerate(layers):
            avg = sum(compute) / n * (0.1, 0.7, 0.2)[i]
            entry = {"name": name, "timeMs": avg * n, "averageMs": avg, "percentage": (10.0, 70.0, 20.0)[i]}
            if V >= (8, 6, 0):
                entry["medianMs"] = avg
            prof.append(entry)
        with open(args["exportProfile"], "w") as fh:
            json.dump(prof, fh)
    if "exportLayerInfo" in args:
        write_layer_info(args["exportLayerInfo"], engine, layers)
    ordered = sorted(compute)
    pct = ", ".join(f"percentile({p:g}%) = {ordered[min(n - 1, int(p / 100 * n))]:.5f} ms" for p in percentiles)
    stats = f"min = {ordered[0]:.5f} ms, max = {ordered[-1]:.5f} ms, mean = {sum(ordered) / n:.5f} ms, "
    stats += f"median = {ordered[n // 2]:.5f} ms, {pct}"
    out("[I] === Performance summary ===")
    out(f"[I] Throughput: {1000.0 * batch / (sum(ordered) / n):.3f} qps")
    out(f"[I] Latency: {stats}")
    out(f"[I] GPU Compute Time: {stats}")


def write_layer_info(path: str, engine: dict[str, object], layers: list[str]) -> None:
    if not engine["detailed"]:
        doc: dict[str, object] = {"Layers": layers}
    else:

        def tensor(name: str, fmt: str, dtype: str) -> dict[str, object]:
            if V >= (11, 0, 0):
                return {"Name": name, "Location": "Device", "Format": fmt, "Datatype": dtype}
            return {"Name": name, "Location": "Device", "Format/Datatype": f"{fmt} {dtype} format"}

        ins, outs = engine["inputs"], engine["outputs"]  # type: ignore[assignment]
        doc = {"Layers": [
            {"Name": layers[0], "LayerType": "Reformat", "Inputs": [tensor(ins[0], "Row major linear", "FP32")],
             "Outputs": [tensor("r0", "Channel major", "FP16")]},
            {"Name": layers[1], "LayerType": "CaskConvolution", "Inputs": [tensor("r0", "Channel major", "FP16")],
             "Outputs": [tensor("c0", "Channel major", "FP16")], "TacticName": "sm80_xmma_fprop"},
            {"Name": layers[2], "LayerType": "CaskGemm", "Inputs": [tensor("c0", "Channel major", "FP16")],
             "Outputs": [tensor(outs[0], "Row major linear", "FP32")]},
        ]}  # fmt: skip
    if V < (11, 0, 0):
        doc["Bindings"] = list(engine["inputs"]) + list(engine["outputs"])  # type: ignore[call-overload]
    with open(path, "w") as fh:
        json.dump(doc, fh)


def main() -> None:
    with open(os.environ["STANDIN_LOG"], "a") as fh:
        fh.write(json.dumps(sys.argv[1:]) + "\n")
    out(f"&&&& RUNNING TensorRT.trtexec {BANNER} # trtexec {' '.join(sys.argv[1:])}")
    if sys.argv[1:] == ["--help"]:
        out("=== Build Options ===")
        for flag in sorted(FLAGS):
            out(f"  --{flag}")
        return
    args = parse_args(sys.argv[1:])
    out("[I] === Device Information ===")
    out(f"[I] Selected Device: {DEVICE}")
    out(f"[I] Compute Capability: {CC}")
    out("[I] SMs: 16")
    out("[I] Device Global Memory: 62841 MiB")
    if ("onnx" in args) == ("loadEngine" in args):
        fail("exactly one of --onnx and --loadEngine is needed")
    engine = build(args) if "onnx" in args else load(args)
    if "skipInference" not in args:
        run_inference(args, engine)
    out(f"&&&& PASSED TensorRT.trtexec {BANNER} # trtexec {' '.join(sys.argv[1:])}")


if __name__ == "__main__":
    main()
