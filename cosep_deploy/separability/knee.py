"""The knee of the (k, MSS) curve with Kneedle (the pinned ``kneed`` package does the work).

The paper's setting is a concave, increasing curve, S = 1, smoothed by a second-degree polynomial fit.
Kneedle needs a few points and a non-flat curve; otherwise there is no knee and we return None (the
caller then falls back to the k of maximum MSS).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from cosep_deploy.errors import SeparabilityError

__all__ = ["find_knee"]


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

    None as well for fewer than 3 points or a flat curve (Kneedle's normalisation divides by the range).
    """
    from kneed import KneeLocator

    x = np.asarray(ks, dtype=np.float64).ravel()
    y = np.asarray(scores, dtype=np.float64).ravel()
    if x.size != y.size:
        raise SeparabilityError(f"ks and scores differ in length: {x.size} vs {y.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise SeparabilityError("ks and scores must be finite")
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
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
