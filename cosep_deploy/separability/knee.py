"""The knee of a (k, MSS) curve: how many clusters (kept channels) a layer's separability supports.

Two named rules, both recorded in the plan with the curve they saw and why they chose their k:

``paper`` (the paper's literal setting): Kneedle (the pinned ``kneed`` package) on the raw curve, concave,
increasing, S = 1, after a second-degree polynomial fit. After that fit Kneedle only ever sees a parabola,
so it answers the midpoint of the k range, the first k, or nothing, whatever the curve. When it answers
nothing, the k of maximum MSS is used (our fallback; MSS rises with k, so this keeps nearly everything).

``robust`` (the default): a rule that follows the curve.
1. Drop every k that leaves fewer than ``max(2, ceil(min_rest * N))`` non-medoid points: MSS there averages
   over a handful of near-duplicates and jumps, whatever the layer.
2. Smooth: isotonic (non-decreasing) regression, then a centred moving average of ``window`` points
   (default: about a twentieth of the curve, odd; none on short curves, where it would blur a sharp knee).
3. Normalise both axes to [0, 1] and take the difference curve (height above the chord from the first to
   the last usable point, 0 below it): Kneedle's difference curve, without any polynomial fit.
4. The knee is the smallest k whose height is within one noise level of the largest height (the
   one-standard-error rule of model selection). The noise level, in the same normalised units, is the
   larger of the root-mean-square scatter of the raw curve about its isotonic fit and, when the caller
   gives them, the standard error of MSS at the highest point (MSS is a mean over the layer's channels:
   ``sd(s) / sqrt(m)``). Without the standard error a smooth curve from a few channels reads as noise-free,
   and the chosen k follows whichever of several equally high bends a statistics sample happened to lift.
   0 for a noise-free monotone curve. The
   first grid point has height 0 and is never chosen. A curve that rises evenly (largest height within
   the noise level or below ``min_bend``) has no bend: the smallest k (after step 1's first point) is
   taken, so the lower keep-ratio bound usually sets it (MSS rises with k by construction, so an even
   rise is no evidence for more clusters), and the decision is flagged as a fallback. Never "keep all".
   Kneedle's own answer on the smoothed curve is recorded beside it (``kneedle``) for comparison.
5. Clamp to the keep-ratio bounds ``[ceil(min_keep * N), floor(max_keep * N)]``; a bound that changes k is
   recorded.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from cosep_deploy.errors import SeparabilityError

__all__ = ["KNEE_RULES", "KneeBounds", "KneeDecision", "choose_knee", "find_knee", "isotonic_increasing"]

KNEE_RULES = ("robust", "paper")


@dataclasses.dataclass(frozen=True)
class KneeBounds:
    """Settings of the robust rule (recorded in the plan)."""

    min_keep: float = 0.125  # keep-ratio lower bound
    max_keep: float = 0.875  # keep-ratio upper bound
    min_rest: float = 0.1  # fraction of N that must remain outside the medoids for a k to count
    min_bend: float = 0.05  # a bend lower than this above the chord (normalised units) is flagged as no bend
    window: int = 0  # moving-average window after the isotonic fit; 0: auto (odd, about 1/20 of the points)

    def __post_init__(self) -> None:
        if not 0 < self.min_keep <= self.max_keep <= 1:
            raise SeparabilityError(
                f"keep-ratio bounds need 0 < min_keep <= max_keep <= 1, got {self.min_keep}, {self.max_keep}"
            )
        if not 0 <= self.min_rest < 1 or self.window < 0:
            raise SeparabilityError(f"min_rest must be in [0, 1) and window >= 0, got {self.min_rest}, {self.window}")


@dataclasses.dataclass(frozen=True)
class KneeDecision:
    """The k a knee rule chose on one curve, and why."""

    k: int
    rule: str
    kneedle: int | None  # what Kneedle answered (None: no knee)
    why: str
    fallback: bool
    bound: str | None = None  # "min_keep" or "max_keep" when a keep-ratio bound set k
    used: tuple[tuple[int, float], ...] = ()  # the (k, smoothed MSS) points the rule looked at
    bounds: KneeBounds | None = None
    noise: float | None = None  # robust rule: the noise level (normalised) the heights were compared with

    def to_json(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "rule": self.rule,
            "kneedle": self.kneedle,
            "why": self.why,
            "fallback": self.fallback,
            "bound": self.bound,
            "used": [[k, round(y, 6)] for k, y in self.used],
            "bounds": dataclasses.asdict(self.bounds) if self.bounds is not None else None,
            "noise": None if self.noise is None else round(self.noise, 6),
        }


def _as_curve(ks: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(ks, dtype=np.float64).ravel()
    y = np.asarray(scores, dtype=np.float64).ravel()
    if x.size != y.size:
        raise SeparabilityError(f"ks and scores differ in length: {x.size} vs {y.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise SeparabilityError("ks and scores must be finite")
    order = np.argsort(x, kind="stable")
    return x[order], y[order]


def find_knee(
    ks: Sequence[int] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    *,
    S: float = 1.0,
    curve: str = "concave",
    direction: str = "increasing",
    interp_method: str = "polynomial",
    polynomial_degree: int = 2,
) -> int | None:
    """Kneedle knee of ``scores`` over ``ks`` (sorted by k first), or None when kneed finds none.

    The defaults are the paper's settings. None as well for fewer than 3 points or a flat curve
    (Kneedle's normalisation divides by the range).
    """
    from kneed import KneeLocator

    x, y = _as_curve(ks, scores)
    if x.size < 3 or np.unique(x).size != x.size or np.ptp(y) == 0.0:
        return None
    with warnings.catch_warnings():
        # polyfit warns on ill-conditioned fits; kneed may warn when it finds no knee: both mean "no knee".
        warnings.simplefilter("ignore")
        try:
            loc = KneeLocator(
                x,
                y,
                S=S,
                curve=curve,
                direction=direction,
                interp_method=interp_method,
                polynomial_degree=polynomial_degree,
            )
        except ValueError as exc:
            raise SeparabilityError(f"invalid Kneedle settings: {exc}") from exc
        knee = loc.knee
    if knee is None or not np.isfinite(knee):
        return None
    return round(float(knee))


def isotonic_increasing(y: Sequence[float] | np.ndarray) -> np.ndarray:
    """Least-squares non-decreasing fit (pool adjacent violators), equal weights."""
    values: list[float] = []
    sizes: list[int] = []
    for v in np.asarray(y, dtype=np.float64).ravel():
        values.append(float(v))
        sizes.append(1)
        while len(values) > 1 and values[-2] > values[-1]:
            n = sizes[-2] + sizes[-1]
            merged = (values[-2] * sizes[-2] + values[-1] * sizes[-1]) / n
            values[-2:], sizes[-2:] = [merged], [n]
    return np.repeat(np.asarray(values), sizes)


def _moving_average(y: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or y.size < 3:
        return y
    half = window // 2
    return np.array([y[max(0, i - half) : i + half + 1].mean() for i in range(y.size)])


def _clamp(k: int, n: int, bounds: KneeBounds) -> tuple[int, str | None]:
    lo = max(1, math.ceil(bounds.min_keep * n - 1e-9))
    hi = max(lo, math.floor(bounds.max_keep * n + 1e-9))
    if k < lo:
        return lo, "min_keep"
    if k > hi:
        return hi, "max_keep"
    return k, None


def _paper(x: np.ndarray, y: np.ndarray) -> KneeDecision:
    knee = find_knee(x, y)
    used = tuple((int(a), float(b)) for a, b in zip(x, y, strict=True))
    if knee is not None:
        return KneeDecision(knee, "paper", knee, "Kneedle after a degree-2 polynomial fit (paper)", False, used=used)
    best = int(x[int(np.argmax(y))])
    return KneeDecision(best, "paper", None, "Kneedle found no knee: k of maximum MSS", True, used=used)


def _usable(x: np.ndarray, n: int, bounds: KneeBounds) -> np.ndarray:
    """Step 1: the mask of points with at least ``max(2, ceil(min_rest * N))`` non-medoid points left."""
    return np.asarray((n - x) >= max(2, math.ceil(bounds.min_rest * n)))


def _kneedle_interp(x: np.ndarray, smooth: np.ndarray) -> int | None:
    """Kneedle (S = 1, no polynomial fit) on the smoothed curve: recorded beside the rule's own k."""
    from kneed import KneeLocator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        knee = KneeLocator(x, smooth, S=1.0, curve="concave", direction="increasing", interp_method="interp1d").knee
    return None if knee is None or not np.isfinite(knee) else round(float(knee))


def _parsimonious_peak(x: np.ndarray, diff: np.ndarray, inner: np.ndarray, best: float, noise: float) -> int:
    """The smallest interior k (``inner``: indices) whose height above the chord is within one noise level of
    the largest, ``best``. The one-standard-error rule of model selection: among bends the curve cannot
    tell apart, the smallest count."""
    return int(x[inner[np.flatnonzero(diff[inner] >= best - noise)[0]]])


def _robust(x: np.ndarray, y: np.ndarray, n: int, bounds: KneeBounds, se: np.ndarray | None) -> KneeDecision:
    mask = _usable(x, n, bounds)
    x, y = x[mask], y[mask]
    if x.size < 3:
        k, bound = _clamp(n, n, bounds)
        return KneeDecision(k, "robust", None, "fewer than 3 usable k: upper keep bound", True, bound, (), bounds)
    window = bounds.window or 2 * (x.size // 40) + 1
    monotone = isotonic_increasing(y)
    smooth = _moving_average(monotone, window)
    used = tuple((int(a), float(b)) for a, b in zip(x, smooth, strict=True))
    rise = float(smooth[-1] - smooth[0])
    if rise <= 1e-12:
        k, bound = _clamp(n, n, bounds)
        return KneeDecision(k, "robust", None, "flat MSS curve: upper keep bound", True, bound, used, bounds)
    xn = (x - x[0]) / (x[-1] - x[0])
    diff = np.maximum((smooth - smooth[0]) / rise - xn, 0.0)  # points below the chord have no height
    inner = np.arange(1, diff.size - 1) if diff.size > 2 else np.arange(diff.size)
    top = int(inner[int(np.argmax(diff[inner]))])
    best = float(diff[top])
    scatter = float(np.sqrt(np.mean((y - monotone) ** 2))) / rise  # the raw curve's scatter about its isotonic fit
    stderr = float(se[mask][top]) / rise if se is not None else 0.0  # MSS's own standard error at the top
    noise = max(scatter, stderr)
    kneedle = _kneedle_interp(x, smooth)
    chosen = _parsimonious_peak(x, diff, inner, best, noise)
    why = (
        f"largest height above the chord {best:.3f} at k = {int(x[top])} (normalised, isotonic smoothed curve); "
        f"smallest k within one noise level ({noise:.3f}: scatter {scatter:.3f}, standard error {stderr:.3f}) of it"
    )
    fallback = best <= max(noise, bounds.min_bend)
    if fallback:  # MSS rises no faster than its by-construction trend: no evidence for more clusters
        chosen = int(x[1])
        why += f"; no bend above the noise (or below {bounds.min_bend:g}): the smallest k, {chosen}"
    k, bound = _clamp(chosen, n, bounds)
    if bound is not None:
        why += f"; keep-ratio bound {bound} moved k from {chosen} to {k}"
    return KneeDecision(k, "robust", kneedle, why, fallback, bound, used, bounds, noise)


def choose_knee(
    ks: Sequence[int] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    *,
    n: int,
    rule: str = "robust",
    bounds: KneeBounds | None = None,
    se: Sequence[float] | np.ndarray | None = None,
) -> KneeDecision:
    """The kept count for a layer of ``n`` channels from its MSS curve, with the named ``rule``.

    ``se``: the standard error of each score (same order as ``ks``); the robust rule's noise level is at
    least the one at the curve's highest bend. The paper rule ignores it.
    """
    if rule not in KNEE_RULES:
        raise SeparabilityError(f"knee rule must be one of {KNEE_RULES}, got {rule!r}")
    x, y = _as_curve(ks, scores)
    err = None
    if se is not None:
        _, err = _as_curve(ks, se)  # the same sort by k
        if np.any(err < 0):
            raise SeparabilityError("standard errors must be >= 0")
    if rule == "paper":
        return _paper(x, y)
    return _robust(x, y, n, bounds or KneeBounds(), err)
