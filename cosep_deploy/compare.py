"""Output comparison between any two engines through Polygraphy's comparator, per-precision tolerances.

The reference is normally ONNX Runtime running the fp32 ONNX; the candidate any runner (an fp16 or int8
variant, a TensorRT engine, eager PyTorch). Both runners' outputs for every feed go into a Polygraphy
``RunResults`` and ``Comparator.compare_accuracy`` applies ``SimpleCompareFunc`` (element-wise: an element
fails when it exceeds both ``atol`` and ``rtol``); the per-output max/mean errors are Polygraphy's statistics.
On top of that, every output with a class axis must agree on the argmax (top-1 agreement), because a
reduced-precision model is judged by what it predicts:

======== ======= ======= =============== ==================================================================
precision  rtol    atol   min. agreement  why
======== ======= ======= =============== ==================================================================
fp32       1e-3    1e-4   0.99            same math, other kernels: only summation order differs
fp16       1e-2    1e-2*  0.99            TensorRT's usual fp16 band (1e-3..1e-2); * times the output's scale
int8       none    none   0.95            logits move by whole quantization steps, so only decisions count
======== ======= ======= =============== ==================================================================

These are our choices (int8's element-wise errors are still measured and reported). A flip of the argmax on
an input whose reference top-2 margin is within twice the output's ``atol`` (each of the two logits may move
by ``atol``) is a tie the tolerance already allows, not a wrong decision: it counts as agreeing and is
reported as an excused near-tie (a 2-epoch ResNet-20 flipped one of 32 inputs in fp16 on an AMD EPYC's
kernels, max abs error 0.0036, and failed the 99% gate). int8 checks no ``atol``, so every int8 flip counts.

fp16's ``atol`` is relative to each output's scale, ``max(1, max |reference|)`` over all feeds: fp16
activations carry a relative error, so a logit near 0 inherits an absolute error proportional to the range of
the whole output (measured on the demo's trained ResNet-20: logits up to 19.5, fp16 errors up to 0.016 = 0.08%
of the range on logits near 0, with 100% top-1 agreement); an absolute 1e-2 would fail every well-trained
model whose logits pass about 12. ``check=True`` raises
:class:`ExportValidationError` listing every failing output.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cosep_deploy.backends.base import Runner
from cosep_deploy.backends.select import runner_for
from cosep_deploy.errors import ConfigError, ExportValidationError

if TYPE_CHECKING:
    from torch.utils.data import Dataset

__all__ = [
    "DEFAULT_TOLERANCES",
    "ComparisonResult",
    "OutputComparison",
    "Tolerance",
    "compare_files",
    "compare_runners",
    "resolve_tolerance",
]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Tolerance:
    """Element-wise tolerances (``inf`` = not checked) and the minimum top-1 agreement."""

    rtol: float
    atol: float
    min_agreement: float
    atol_scaled: bool = False  # atol times max(1, max |reference|) of each output (fp16's relative activations)


DEFAULT_TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(rtol=1e-3, atol=1e-4, min_agreement=0.99),
    "fp16": Tolerance(rtol=1e-2, atol=1e-2, min_agreement=0.99, atol_scaled=True),
    "int8": Tolerance(rtol=math.inf, atol=math.inf, min_agreement=0.95),
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class OutputComparison:
    """One output over all feeds: Polygraphy's error statistics, argmax agreement, the verdict and why."""

    max_abs: float
    max_rel: float
    mean_abs: float
    mean_rel: float
    agreement: float | None  # None for outputs without a class axis
    passed: bool
    near_ties: int = 0  # argmax flips excused: the reference's top-2 margin was within 2 x atol
    problems: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, kw_only=True)
class ComparisonResult:
    reference: str
    candidate: str
    precision: str
    tolerance: Tolerance
    samples: int
    outputs: dict[str, OutputComparison]

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outputs.values())

    def lines(self) -> list[str]:
        """One line per output, e.g. ``PASS logits: max abs 3e-06, ..., top-1 agreement 100.00%``."""
        out = []
        for name, o in self.outputs.items():
            agree = "n/a" if o.agreement is None else f"{100 * o.agreement:.2f}%"
            if o.near_ties:
                agree += f" ({o.near_ties} flip{'s' if o.near_ties > 1 else ''} within 2 x atol of a tie excused)"
            why = f" ({'; '.join(o.problems)})" if o.problems else ""
            out.append(
                f"{'PASS' if o.passed else 'FAIL'} {name}: max abs {o.max_abs:.3g}, max rel {o.max_rel:.3g}, "
                f"mean abs {o.mean_abs:.3g}, top-1 agreement {agree}{why}"
            )
        return out

    def to_json(self) -> dict[str, Any]:
        tol = dataclasses.asdict(self.tolerance)
        return {
            "reference": self.reference,
            "candidate": self.candidate,
            "precision": self.precision,
            "tolerance": {k: (None if math.isinf(v) else v) for k, v in tol.items()},  # JSON has no inf
            "samples": self.samples,
            "passed": self.passed,
            "outputs": {
                name: {**dataclasses.asdict(o), "problems": list(o.problems)} for name, o in self.outputs.items()
            },
        }


def resolve_tolerance(
    precision: str, rtol: float | None = None, atol: float | None = None, min_agreement: float | None = None
) -> Tolerance:
    """The default tolerance of ``precision`` with any of its values overridden."""
    if precision not in DEFAULT_TOLERANCES:
        raise ConfigError(f"unknown precision {precision!r}: choose from {', '.join(DEFAULT_TOLERANCES)}")
    base = DEFAULT_TOLERANCES[precision]
    return Tolerance(
        rtol=base.rtol if rtol is None else rtol,
        atol=base.atol if atol is None else atol,
        min_agreement=base.min_agreement if min_agreement is None else min_agreement,
        atol_scaled=base.atol_scaled,
    )


def compare_runners(
    reference: Runner,
    candidate: Runner,
    feeds: Sequence[Mapping[str, np.ndarray]],
    *,
    precision: str | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    min_agreement: float | None = None,
    check: bool = False,
) -> ComparisonResult:
    """Run both runners (entered, or loading on first use) on every feed and compare output by output.

    ``precision`` picks the default tolerances (default: the candidate's precision); ``rtol``/``atol``/
    ``min_agreement`` override them.
    """
    if not feeds:
        raise ConfigError("nothing to compare: no input feeds were given")
    prec = precision or candidate.info().precision
    tol = resolve_tolerance(prec, rtol, atol, min_agreement)
    ref_name, cand_name = _name(reference, "reference"), _name(candidate, "candidate")
    _check_input_shapes(reference, candidate, feeds[0], ref_name, cand_name)
    ref_out = [reference.infer(feed) for feed in feeds]
    cand_out = [candidate.infer(feed) for feed in feeds]
    atols = _output_atols(ref_out, tol)
    verdicts = _polygraphy_compare(ref_out, cand_out, tol, atols)
    outputs: dict[str, OutputComparison] = {}
    for name in ref_out[0]:
        problems: list[str] = []
        if any(name not in c for c in cand_out):
            problems.append(f"missing from the candidate (it has {', '.join(cand_out[0]) or 'no outputs'})")
        stats = [v[name] for v in verdicts if name in v]
        if any(isinstance(s, bool) for s in stats):  # Polygraphy returns a bare False for a shape mismatch
            problems.append(f"shapes differ: {ref_out[0][name].shape} vs {cand_out[0].get(name, np.empty(0)).shape}")
        comparable = not problems
        numeric = [s for s in stats if not isinstance(s, bool)]
        if numeric and not all(bool(s) for s in numeric):
            worst = max(s.max_absdiff for s in numeric)
            scaled = f" (= {tol.atol:g} x output scale {atols[name] / tol.atol:.3g})" if tol.atol_scaled else ""
            problems.append(f"max abs error {worst:.3g} exceeds atol={atols[name]:.3g}{scaled} and rtol={tol.rtol:g}")
        agreement, near_ties = (
            _agreement([r[name] for r in ref_out], [c[name] for c in cand_out], tie_band=2 * atols[name])
            if comparable
            else (None, 0)
        )
        if agreement is not None and agreement < tol.min_agreement:
            problems.append(f"top-1 agreement {100 * agreement:.2f}% is below {100 * tol.min_agreement:.2f}%")
        outputs[name] = OutputComparison(
            max_abs=max((s.max_absdiff for s in numeric), default=math.nan),
            max_rel=max((s.max_reldiff for s in numeric), default=math.nan),
            mean_abs=float(np.mean([s.mean_absdiff for s in numeric])) if numeric else math.nan,
            mean_rel=float(np.mean([s.mean_reldiff for s in numeric])) if numeric else math.nan,
            agreement=agreement,
            near_ties=near_ties,
            passed=not problems,
            problems=tuple(problems),
        )
    samples = sum(int(next(iter(feed.values())).shape[0]) for feed in feeds)
    result = ComparisonResult(
        reference=ref_name, candidate=cand_name, precision=prec, tolerance=tol, samples=samples, outputs=outputs
    )
    if check and not result.passed:
        failing = [line for line in result.lines() if line.startswith("FAIL")]
        raise ExportValidationError(
            f"{cand_name} differs from {ref_name} beyond {prec} tolerances on {samples} inputs: " + "; ".join(failing)
        )
    return result


def _output_atols(ref_out: list[dict[str, np.ndarray]], tol: Tolerance) -> dict[str, float]:
    """Each output's absolute tolerance: ``atol``, times ``max(1, max |reference|)`` when it is scaled."""
    atols: dict[str, float] = {}
    for name in ref_out[0]:
        scale = 1.0
        if tol.atol_scaled and not math.isinf(tol.atol):
            peaks = [float(np.max(np.abs(r[name]))) for r in ref_out if name in r and np.size(r[name])]
            scale = max([1.0, *(p for p in peaks if math.isfinite(p))])
        atols[name] = tol.atol * scale
    return atols


def _polygraphy_compare(
    ref_out: list[dict[str, np.ndarray]],
    cand_out: list[dict[str, np.ndarray]],
    tol: Tolerance,
    atols: dict[str, float],
) -> list[dict[str, Any]]:
    """Per feed, Polygraphy's per-output result (an ``OutputCompareResult``, or ``False`` on a shape mismatch)."""
    from polygraphy.comparator import Comparator, IterationResult, RunResults, SimpleCompareFunc
    from polygraphy.exception import PolygraphyException
    from polygraphy.logger import G_LOGGER

    # fixed runner names: two runners of one backend would otherwise collide in RunResults
    run_results = RunResults()
    run_results.append(("reference", [IterationResult(dict(o), runner_name="reference") for o in ref_out]))
    run_results.append(("candidate", [IterationResult(dict(o), runner_name="candidate") for o in cand_out]))
    # SimpleCompareFunc is what CompareFunc.simple returns; Polygraphy 0.53 deprecates the latter
    compare_func = SimpleCompareFunc(rtol=tol.rtol, atol=atols, check_error_stat="elemwise")
    try:
        with G_LOGGER.verbosity(G_LOGGER.CRITICAL):  # our one line per output replaces its histograms
            accuracy = Comparator.compare_accuracy(run_results, compare_func=compare_func)
    except PolygraphyException as exc:
        raise ExportValidationError(f"Polygraphy could not compare the outputs: {exc}".splitlines()[0]) from exc
    return [dict(iteration) for iteration in accuracy[0][("reference", "candidate")]]


def _agreement(ref: list[np.ndarray], cand: list[np.ndarray], *, tie_band: float) -> tuple[float | None, int]:
    """Fraction of rows whose argmax over the last axis is the same (None without a class axis), a flip on a
    row whose reference top-2 margin is at most ``tie_band`` counting as agreeing; and how many such flips."""
    if ref[0].ndim < 2 or ref[0].shape[-1] < 2:
        return None, 0
    agree, excused = [], 0
    for r, c in zip(ref, cand, strict=True):
        rows_r, rows_c = r.reshape(-1, r.shape[-1]), c.reshape(-1, c.shape[-1])
        same = np.argmax(rows_r, axis=-1) == np.argmax(rows_c, axis=-1)
        top2 = np.sort(rows_r, axis=-1)[:, -2:]
        tie = (top2[:, 1] - top2[:, 0]) <= tie_band if math.isfinite(tie_band) else np.zeros_like(same)
        excused += int(np.count_nonzero(~same & tie))
        agree.append(same | tie)
    return float(np.concatenate(agree).mean()), excused


def _fixed_dims(shape: Sequence[Any]) -> list[Any]:
    """A shape's dims after the batch dim, symbolic ones (strings, None, -1) as None."""
    return [d if isinstance(d, int) and d > 0 else None for d in list(shape)[1:]]


def _check_input_shapes(
    reference: Runner, candidate: Runner, feed: Mapping[str, np.ndarray], ref_name: str, cand_name: str
) -> None:
    """Models that take other input shapes are refused with both shapes, before either runs."""
    ref_shapes, cand_shapes = dict(reference.info().input_shapes), dict(candidate.info().input_shapes)
    for name, array in feed.items():
        for label, shapes in ((ref_name, ref_shapes), (cand_name, cand_shapes)):
            shape = shapes.get(name)
            if shape is None:
                continue
            dims = _fixed_dims(shape)
            given = list(array.shape[1:])
            if len(dims) != len(given) or any(d is not None and d != g for d, g in zip(dims, given, strict=True)):
                raise ConfigError(
                    f"input shapes differ: {ref_name} takes {tuple(ref_shapes.get(name, ()))} and {cand_name} takes "
                    f"{tuple(cand_shapes.get(name, ()))} for input {name!r} (the inputs given are "
                    f"{tuple(array.shape)}; {label} does not accept them)"
                )


def _name(runner: Runner, fallback: str) -> str:
    name = getattr(runner, "name", None)
    return str(name) if name else f"{fallback} ({runner.info().backend})"


def compare_files(
    reference: str | Path,
    candidate: str | Path,
    inputs: np.ndarray | Sequence[Mapping[str, np.ndarray]] | Dataset[Any],
    *,
    batch_size: int = 32,
    samples: int = 256,
    threads: int | None = None,
    precision: str | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    min_agreement: float | None = None,
    check: bool = False,
    candidate_backend: str | None = None,
) -> ComparisonResult:
    """Compare two engine files on real inputs: images ``[N, C, H, W]``, ready feeds, or the first
    ``samples`` images of a dataset, run in batches of ``batch_size``. Either may be a model directory
    (:func:`runner_for`); ``candidate_backend`` picks how the candidate's is run."""
    ref = runner_for(reference, threads=threads)
    cand = runner_for(candidate, threads=threads, backend=candidate_backend)
    with ref, cand:
        feeds = _feeds(inputs, ref.info().input_names[0], batch_size, samples)
        return compare_runners(
            ref, cand, feeds, precision=precision, rtol=rtol, atol=atol, min_agreement=min_agreement, check=check
        )


def _feeds(
    inputs: np.ndarray | Sequence[Mapping[str, np.ndarray]] | Dataset[Any], name: str, batch_size: int, samples: int
) -> list[Mapping[str, np.ndarray]]:
    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1, found {batch_size}")
    if isinstance(inputs, np.ndarray):
        images = inputs
    elif not isinstance(inputs, Sequence):  # a torch Dataset (imported only here: comparing files needs no torch)
        import torch

        n = min(samples, len(inputs))  # type: ignore[arg-type]
        images = torch.stack([inputs[i][0] for i in range(n)]).numpy()
    else:
        return list(inputs)
    images = np.ascontiguousarray(images, dtype=np.float32)
    return [{name: images[i : i + batch_size]} for i in range(0, len(images), batch_size)]
