"""Streaming per-class activation statistics: count, sum and sum of squares in float64.

The three sums are additive, so batches, loader workers and torch.distributed processes combine by plain
addition (:meth:`ClassStats.merge`, :meth:`ClassStats.all_reduce`). Mean and (unbiased) variance are
derived only at the end. float64 keeps ``sumsq - sum^2 / n`` accurate: the relative error of the variance is
about ``1e-16 * mean^2 / var``, negligible unless a channel's mean is ~1e6 times its standard deviation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from cosep_deploy.errors import DataError, SeparabilityError

__all__ = ["ClassStats", "as_labels"]


def _as_tensor(x: Any, what: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach()
    if isinstance(x, np.ndarray):
        return torch.from_numpy(x)
    raise DataError(f"{what} must be a torch.Tensor or numpy array, got {type(x).__name__}")


def as_labels(labels: Any, batch: int, device: torch.device) -> torch.Tensor:
    """Labels as a 1-D int64 tensor of length ``batch`` on ``device`` (validated, never asserted)."""
    lab = _as_tensor(labels, "labels")
    if lab.ndim != 1 or lab.shape[0] != batch:
        raise DataError(
            f"labels must have shape [{batch}] (one class index per sample), got {list(lab.shape)}; "
            "the loader must yield (images, labels) with integer class labels"
        )
    if lab.dtype.is_floating_point or lab.dtype.is_complex or lab.dtype == torch.bool:
        raise DataError(f"labels must be integer class indices, got dtype {lab.dtype}")
    return lab.to(device=device, dtype=torch.int64, non_blocking=True)


class ClassStats:
    """Per-class count, sum and sum of squares of N components (optionally x P positions).

    ``num_classes=None`` grows the class dimension to the largest label seen; give it explicitly when a
    class may be missing from the data (and for :meth:`all_reduce` consistency across processes).
    ``name`` (the layer) is used in error messages. The accumulators live on the device of the first
    activations given to :meth:`update`.
    """

    def __init__(self, num_classes: int | None = None, *, name: str | None = None) -> None:
        if num_classes is not None and (isinstance(num_classes, bool) or num_classes < 1):
            raise SeparabilityError(f"num_classes must be a positive int or None, got {num_classes!r}")
        self.name = name
        self._fixed = num_classes is not None
        self._classes = int(num_classes) if num_classes is not None else 0
        self._shape: tuple[int, ...] | None = None
        self._count: torch.Tensor | None = None
        self._sum: torch.Tensor | None = None
        self._sumsq: torch.Tensor | None = None

    # ------------------------------------------------------------------ accumulation
    def _where(self) -> str:
        return f" at layer {self.name!r}" if self.name else ""

    def _init(self, shape: tuple[int, ...], device: torch.device) -> None:
        self._shape = shape
        self._count = torch.zeros(self._classes, dtype=torch.int64, device=device)
        self._sum = torch.zeros((self._classes, *shape), dtype=torch.float64, device=device)
        self._sumsq = torch.zeros_like(self._sum)

    def _grow(self, classes: int) -> None:
        """Pad the class dimension with zero rows (dynamic ``num_classes`` only)."""
        if classes <= self._classes:
            return
        self._classes = classes
        if self._count is None or self._sum is None or self._sumsq is None:
            return
        extra = classes - self._count.shape[0]
        dev = self._count.device
        self._count = torch.cat([self._count, torch.zeros(extra, dtype=torch.int64, device=dev)])
        pad = torch.zeros((extra, *self._sum.shape[1:]), dtype=torch.float64, device=dev)
        self._sum = torch.cat([self._sum, pad])
        self._sumsq = torch.cat([self._sumsq, pad])

    def _check_labels(self, lab: torch.Tensor) -> None:
        if lab.numel() == 0:
            return
        lo, hi = int(lab.min()), int(lab.max())
        if lo < 0:
            raise DataError(f"negative class label {lo}{self._where()}: labels must be in [0, num_classes)")
        if hi >= self._classes:
            if self._fixed:
                raise DataError(
                    f"class label {hi}{self._where()} is out of range for num_classes={self._classes}; "
                    "pass the dataset's true number of classes"
                )
            self._grow(hi + 1)

    def update(self, acts: Any, labels: Any, *, check_finite: bool = True) -> None:
        """Add a batch: ``acts`` [B, N] or [B, N, P] (torch or numpy), ``labels`` [B] ints in [0, C).

        ``check_finite=False`` skips the NaN/inf scan (the caller checks the batch itself, as
        :func:`collect_class_stats` does with one device sync per batch for all layers).
        """
        x = _as_tensor(acts, "activations")
        if x.ndim not in (2, 3):
            raise DataError(f"activations{self._where()} must have shape [B, N] or [B, N, P], got {list(x.shape)}")
        lab = as_labels(labels, x.shape[0], x.device)
        if check_finite and not bool(torch.isfinite(x).all()):
            raise DataError(
                f"non-finite activations (NaN or inf){self._where()}: check the input data, the model "
                "weights and the precision (fp16 overflow)"
            )
        self._check_labels(lab)
        self._accumulate(x, lab)

    def _accumulate(self, x: torch.Tensor, lab: torch.Tensor) -> None:
        """Add a checked batch (labels already validated against ``num_classes``)."""
        shape = tuple(int(s) for s in x.shape[1:])
        if self._shape is None:
            self._init(shape, x.device)
        elif shape != self._shape:
            raise DataError(
                f"activations{self._where()} have per-sample shape {list(shape)}, earlier batches had "
                f"{list(self._shape)}; use spatial='gap' or 'pool:S' when input sizes vary"
            )
        assert self._count is not None and self._sum is not None and self._sumsq is not None  # for mypy
        x = x.to(device=self._sum.device, dtype=torch.float64)
        lab = lab.to(self._sum.device)
        # Scatter each sample's row into its class row: one pass, no [B, C] one-hot. On GPUs index_add_
        # (atomics); on CPU index_put_(accumulate=True), which runs serially: CPU index_add_ opens a
        # thread-parallel region per call and measured 50+ ms per tiny [32, 512] batch on a busy
        # 2-core machine (threads waiting to be scheduled), 0.01 ms for index_put_.
        sq = x * x
        if x.is_cuda:
            self._sum.index_add_(0, lab, x)
            self._sumsq.index_add_(0, lab, sq)
        else:
            self._sum.index_put_((lab,), x, accumulate=True)
            self._sumsq.index_put_((lab,), sq, accumulate=True)
        self._count += torch.bincount(lab, minlength=self._classes)

    def merge(self, other: ClassStats) -> ClassStats:
        """Add ``other``'s sums into this one (in place) and return ``self``."""
        if other._shape is None:
            return self
        if self._shape is not None and other._shape != self._shape:
            raise SeparabilityError(
                f"cannot merge statistics of shape {list(other._shape)} into {list(self._shape)}"
                f"{self._where()}: they come from different layers or spatial modes"
            )
        if self._fixed and other._classes > self._classes:
            raise SeparabilityError(
                f"cannot merge statistics over {other._classes} classes into num_classes={self._classes}"
            )
        if self._fixed and other._fixed and other._classes != self._classes:
            raise SeparabilityError(f"num_classes differ: {self._classes} vs {other._classes}")
        self._grow(other._classes)
        assert other._count is not None and other._sum is not None and other._sumsq is not None
        if self._shape is None:
            self._init(other._shape, other._sum.device)
        assert self._count is not None and self._sum is not None and self._sumsq is not None
        c = other._classes
        dev = self._sum.device
        self._count[:c] += other._count.to(dev)
        self._sum[:c] += other._sum.to(dev)
        self._sumsq[:c] += other._sumsq.to(dev)
        return self

    def all_reduce(self, group: Any = None) -> None:
        """Sum the statistics over all torch.distributed processes (no-op when not initialised).

        Every process must call it, with statistics of the same per-sample shape. With a dynamic
        ``num_classes`` the class dimension is first agreed on (maximum over processes). The three
        sums travel in one flat float64 buffer (counts are exact in float64 up to 2^53).
        """
        dist = torch.distributed
        if not (dist.is_available() and dist.is_initialized()):
            return
        if self._shape is None or self._sum is None:
            raise SeparabilityError(
                f"all_reduce{self._where()}: this process has no statistics yet (no update); every "
                "process must see at least one batch, or build the stats with the same shape first"
            )
        dev = self._sum.device
        if not self._fixed:
            classes = torch.tensor([self._classes], dtype=torch.int64, device=dev)
            dist.all_reduce(classes, op=dist.ReduceOp.MAX, group=group)
            self._grow(int(classes.item()))
        assert self._count is not None and self._sumsq is not None
        flat = torch.cat([self._count.to(torch.float64), self._sum.flatten(), self._sumsq.flatten()])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM, group=group)
        c, m = self._classes, self._sum.numel()
        self._count = flat[:c].round().to(torch.int64)
        self._sum = flat[c : c + m].view_as(self._sum).clone()
        self._sumsq = flat[c + m :].view_as(self._sumsq).clone()

    # ------------------------------------------------------------------ results
    @property
    def num_classes(self) -> int:
        return self._classes

    @property
    def shape(self) -> tuple[int, ...] | None:
        """Per-sample shape: (N,) or (N, P); None before the first update."""
        return self._shape

    @property
    def counts(self) -> np.ndarray:
        """Samples seen per class, int64 [C]."""
        if self._count is None:
            return np.zeros(self._classes, dtype=np.int64)
        return self._count.cpu().numpy()

    def check(self, min_per_class: int = 2) -> None:
        """Raise :class:`DataError` naming every class with fewer than ``min_per_class`` samples."""
        if self._shape is None:
            raise DataError(f"no activations were collected{self._where()}: the loader yielded no samples")
        counts = self.counts
        low = np.flatnonzero(counts < min_per_class)
        if low.size:
            shown = ", ".join(f"{int(c)} ({int(counts[c])})" for c in low[:20])
            more = f" and {low.size - 20} more" if low.size > 20 else ""
            raise DataError(
                f"{low.size} of {counts.size} classes have fewer than {min_per_class} samples{self._where()}"
                f" - class (count): {shown}{more}. Use more images per class (a class-balanced loader), "
                "or pass num_classes that matches the labels actually present"
            )

    @property
    def mean(self) -> np.ndarray:
        """Per-class mean, float64 [C, N] or [C, N, P]; needs at least 1 sample per class."""
        self.check(1)
        assert self._sum is not None and self._count is not None
        n = self._count.to(torch.float64).view(-1, *([1] * len(self._sum.shape[1:])))
        return (self._sum / n).cpu().numpy()

    @property
    def var(self) -> np.ndarray:
        """Per-class unbiased variance (ddof=1), float64, clipped at 0; needs at least 2 samples per class."""
        self.check(2)
        assert self._sum is not None and self._sumsq is not None and self._count is not None
        n = self._count.to(torch.float64).view(-1, *([1] * len(self._sum.shape[1:])))
        v = (self._sumsq - self._sum * self._sum / n) / (n - 1)
        return v.clamp_min_(0.0).cpu().numpy()

    def __repr__(self) -> str:
        return f"ClassStats(name={self.name!r}, num_classes={self._classes}, shape={self._shape})"
