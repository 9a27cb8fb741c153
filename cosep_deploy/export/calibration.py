"""Calibration sets for INT8: a class-balanced, seeded sample of real images, hashed and recorded.

INT8 activation ranges are measured by running the fp32 model over a calibration set. The set here is
the same number of images from every class (drawn with a fixed seed from the training split), so no class's
activations are left out of the ranges; a set that misses a class, or has too few images of one, is refused
with a :class:`DataError` naming those classes. The set's sha256 (over the image bytes and the labels) goes
into every INT8 artifact, so a result names exactly the images its ranges came from.

Loading the images is the only slow part for large datasets (decoding 1000 ImageNet JPEGs), so the tensor
can be cached under a directory (the repository's ``calibration/cache/`` is git-ignored), keyed by the
recipe (dataset spec, seed, indices) and checked against its content hash when read back.
Recipes and recommended sizes: ``calibration/README.md``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from cosep_deploy.artifacts import atomic_write_bytes
from cosep_deploy.errors import ConfigError, DataError

__all__ = ["CalibrationReader", "CalibrationSet", "calibration_set_from_dataset"]


@dataclasses.dataclass(frozen=True, eq=False)
class CalibrationSet:
    """Images ``[N, C, H, W]`` (float32, interleaved class by class) and their labels, with the recipe
    that drew them. Immutable: its hash is computed once."""

    images: np.ndarray
    labels: np.ndarray
    recipe: dict[str, Any]  # dataset spec, per_class, num_classes, seed, sampling

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.shape[0] != self.labels.shape[0] or self.images.shape[0] == 0:
            raise DataError(
                f"a calibration set needs images [N, C, H, W] and N labels (N > 0), found "
                f"{tuple(self.images.shape)} and {tuple(self.labels.shape)}"
            )
        if not np.isfinite(self.images).all():
            raise DataError("calibration images contain NaN or infinite values; check the dataset's preprocessing")
        # stored read-only so the hash stays true to the content
        object.__setattr__(self, "images", _frozen(self.images, np.float32))
        object.__setattr__(self, "labels", _frozen(self.labels, np.int64))

    @functools.cached_property
    def sha256(self) -> str:
        """Content hash over the image bytes (float32, C order), the shape and the labels (int64)."""
        h = hashlib.sha256()
        h.update(repr(tuple(self.images.shape)).encode())
        h.update(self.images.tobytes())
        h.update(self.labels.tobytes())
        return h.hexdigest()

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def to_json(self) -> dict[str, Any]:
        """The recipe as recorded in an INT8 artifact: how to draw the set again, and its hash."""
        return {**self.recipe, "images": len(self), "image_shape": list(self.images.shape[1:]), "sha256": self.sha256}

    def batches(self, input_name: str, batch_size: int = 32) -> Iterator[dict[str, np.ndarray]]:
        """Feeds of at most ``batch_size`` images for a model whose input is ``input_name``."""
        for start in range(0, len(self), batch_size):
            yield {input_name: self.images[start : start + batch_size]}

    def data_reader(self, input_name: str, batch_size: int = 32) -> CalibrationReader:
        """An ONNX Runtime ``CalibrationDataReader`` over this set (for ``quantize_static``)."""
        return CalibrationReader(self, input_name, batch_size)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write images, labels, recipe and hash to one ``.npz`` file, atomically."""
        buf = io.BytesIO()
        np.savez(buf, images=self.images, labels=self.labels, meta=np.array(json.dumps(self.to_json())))
        return atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CalibrationSet:
        """Read a set written by :meth:`save`; a file whose content no longer matches its hash is refused."""
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                images, labels = data["images"], data["labels"]
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
            raise DataError(f"calibration file {path} is unreadable ({exc}); delete it to rebuild it") from exc
        recipe = {k: v for k, v in meta.items() if k not in ("images", "image_shape", "sha256")}
        loaded = cls(images=images, labels=labels, recipe=recipe)
        if loaded.sha256 != meta.get("sha256"):
            raise DataError(f"calibration file {path} does not match its recorded sha256; delete it to rebuild it")
        return loaded


class CalibrationReader:
    """ONNX Runtime's ``CalibrationDataReader`` protocol over a calibration set, in batches.

    ORT's base class recognises any class with ``get_next`` as a subclass (``__subclasshook__``), so this
    module need not import ``onnxruntime.quantization``. ``__len__`` (batches) and ``set_range`` (a window of
    batches) let ``quantize_static`` calibrate chunk by chunk (``CalibStridedMinMax``), which bounds the
    memory its calibrators spend on stored activations.
    """

    def __init__(self, calibration: CalibrationSet, input_name: str, batch_size: int = 32) -> None:
        if batch_size < 1:
            raise ConfigError(f"calibration batch size must be at least 1, found {batch_size}")
        self.calibration, self.input_name, self.batch_size = calibration, input_name, batch_size
        self._window = (0, len(self))
        self._next = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._next >= self._window[1]:
            return None
        start = self._next * self.batch_size
        self._next += 1
        return {self.input_name: self.calibration.images[start : start + self.batch_size]}

    def rewind(self) -> None:
        self._window, self._next = (0, len(self)), 0

    def set_range(self, start_index: int, end_index: int) -> None:
        """Serve batches ``start_index`` to ``end_index - 1`` only."""
        self._window = (max(start_index, 0), min(end_index, len(self)))
        self._next = self._window[0]

    def __len__(self) -> int:
        return -(-len(self.calibration) // self.batch_size)


def calibration_set_from_dataset(
    dataset: Dataset[Any],
    per_class: int,
    *,
    num_classes: int,
    seed: int = 0,
    source: str = "",
    cache_dir: str | os.PathLike[str] | None = None,
) -> CalibrationSet:
    """``per_class`` images of every one of ``num_classes`` classes of ``dataset``, drawn with ``seed``.

    ``source`` names the data (the resolved spec string, e.g. ``str(bundle.spec)``) for the record and the
    cache key. A class with no images or too few raises :class:`DataError` naming it. With ``cache_dir``
    the image tensor is read from, or written to, ``cache_dir/calibration-<key>.npz``.
    """
    from cosep_deploy.data import class_balanced_indices, dataset_labels

    if per_class < 1:
        raise ConfigError(f"calibration images per class must be at least 1, found {per_class}")
    if num_classes < 1:
        raise ConfigError(f"num_classes must be at least 1, found {num_classes}")
    labels = dataset_labels(dataset)
    _check_classes(labels, per_class, num_classes)
    indices = class_balanced_indices(labels, per_class, seed=seed, num_classes=num_classes)
    recipe: dict[str, Any] = {
        "dataset": source,
        "sampling": "class-balanced",
        "per_class": per_class,
        "num_classes": num_classes,
        "seed": seed,
    }
    cache_file = _cache_file(cache_dir, recipe, indices, len(labels)) if cache_dir is not None else None
    if cache_file is not None and cache_file.is_file():
        try:
            cached = CalibrationSet.load(cache_file)
        except DataError:
            cached = None  # damaged or stale: rebuilt and overwritten below
        if cached is not None and np.array_equal(cached.labels, labels[indices]):
            return cached
    images = np.stack([_image(dataset, i) for i in indices])
    calibration = CalibrationSet(images=images, labels=labels[indices], recipe=recipe)
    if cache_file is not None:
        calibration.save(cache_file)
    return calibration


def _check_classes(labels: np.ndarray, per_class: int, num_classes: int) -> None:
    """Refuse a dataset that cannot give ``per_class`` images of every class, naming the classes."""
    outside = sorted({int(v) for v in labels if not 0 <= v < num_classes})
    if outside:
        raise DataError(f"labels {outside[:10]} are outside 0..{num_classes - 1}; is num_classes={num_classes} right?")
    counts = np.bincount(labels, minlength=num_classes)
    missing = [c for c in range(num_classes) if counts[c] == 0]
    short = [c for c in range(num_classes) if 0 < counts[c] < per_class]
    if not missing and not short:
        return
    parts = []
    if missing:
        parts.append(f"missing classes (no images): {_shown(missing)}")
    if short:
        parts.append("too few images: " + _shown([f"{c} ({int(counts[c])} of {per_class})" for c in short]))
    raise DataError(
        f"refusing a calibration set of {per_class} images per class for {num_classes} classes: "
        f"{'; '.join(parts)}. Its ranges would not cover those classes: calibrate on a split that has every "
        "class (the training split), or lower the images per class"
    )


def _shown(items: list[Any], limit: int = 20) -> str:
    return ", ".join(str(i) for i in items[:limit]) + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def _image(dataset: Dataset[Any], index: int) -> np.ndarray:
    image = dataset[index][0]
    array = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    return np.asarray(array, dtype=np.float32)


def _cache_file(cache_dir: str | os.PathLike[str], recipe: dict[str, Any], indices: list[int], size: int) -> Path:
    if not recipe["dataset"]:
        raise ConfigError("caching a calibration set needs source= (the dataset spec) to key the cache file")
    key = hashlib.sha256(json.dumps({**recipe, "size": size, "indices": indices}, sort_keys=True).encode())
    return Path(cache_dir) / f"calibration-{key.hexdigest()[:32]}.npz"


def _frozen(array: np.ndarray, dtype: type[np.generic]) -> np.ndarray:
    # a read-only view, not a copy: an ImageNet set (1000 images at 224x224) is 600 MB
    out = np.ascontiguousarray(array, dtype=dtype).view()
    out.setflags(write=False)
    return out
