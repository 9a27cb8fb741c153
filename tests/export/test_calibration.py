"""Calibration sets: class-balanced, seeded, hashed, refused when a class is missing, cacheable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset, Subset

from cosep_deploy.data import dataset_labels
from cosep_deploy.errors import ConfigError, DataError
from cosep_deploy.export.calibration import CalibrationReader, CalibrationSet, calibration_set_from_dataset


class CountingDataset(Dataset[tuple[torch.Tensor, int]]):
    """Wraps a real dataset and counts image loads (labels come from ``targets`` without loading)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.loads = inner, 0
        self.targets = dataset_labels(inner)

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        self.loads += 1
        return self.inner[index]


def test_class_balanced_seeded_and_hashed(digits8: Any) -> None:
    cal = calibration_set_from_dataset(digits8.train, 8, num_classes=10, seed=3, source="digits")
    assert cal.images.shape == (80, 1, 8, 8) and cal.images.dtype == np.float32
    assert np.bincount(cal.labels, minlength=10).tolist() == [8] * 10
    # the labels are the dataset's own labels for the images drawn
    again = calibration_set_from_dataset(digits8.train, 8, num_classes=10, seed=3, source="digits")
    assert again.sha256 == cal.sha256 and np.array_equal(again.images, cal.images)
    other = calibration_set_from_dataset(digits8.train, 8, num_classes=10, seed=4, source="digits")
    assert other.sha256 != cal.sha256
    recipe = cal.to_json()
    assert recipe["dataset"] == "digits" and recipe["per_class"] == 8 and recipe["seed"] == 3
    assert recipe["images"] == 80 and recipe["sha256"] == cal.sha256 and recipe["sampling"] == "class-balanced"


def test_hash_covers_labels_and_images_and_set_is_read_only(digits8: Any) -> None:
    cal = calibration_set_from_dataset(digits8.train, 2, num_classes=10)
    relabelled = CalibrationSet(images=cal.images, labels=np.roll(cal.labels, 1), recipe=cal.recipe)
    changed = cal.images.copy()
    changed[0, 0, 0, 0] += 1.0
    touched = CalibrationSet(images=changed, labels=cal.labels, recipe=cal.recipe)
    assert len({cal.sha256, relabelled.sha256, touched.sha256}) == 3
    with pytest.raises(ValueError):
        cal.images[0, 0, 0, 0] = 0.0


def test_missing_class_is_refused_by_name(digits8: Any) -> None:
    labels = dataset_labels(digits8.train)
    no_seven = Subset(digits8.train, np.flatnonzero(labels != 7).tolist())
    with pytest.raises(DataError, match=r"missing classes \(no images\): 7\b"):
        calibration_set_from_dataset(no_seven, 4, num_classes=10)


def test_class_with_too_few_images_is_refused(digits8: Any) -> None:
    labels = dataset_labels(digits8.train)
    threes = np.flatnonzero(labels == 3)
    keep = np.concatenate([np.flatnonzero(labels != 3), threes[:5]])
    with pytest.raises(DataError, match=r"too few images: 3 \(5 of 8\)"):
        calibration_set_from_dataset(Subset(digits8.train, keep.tolist()), 8, num_classes=10)
    with pytest.raises(DataError, match=r"outside 0\.\.4"):
        calibration_set_from_dataset(digits8.train, 2, num_classes=5)
    with pytest.raises(ConfigError):
        calibration_set_from_dataset(digits8.train, 0, num_classes=10)


def test_invalid_images_are_refused() -> None:
    images = np.zeros((4, 1, 8, 8), dtype=np.float32)
    images[1, 0, 2, 2] = np.nan
    with pytest.raises(DataError, match="NaN"):
        CalibrationSet(images=images, labels=np.arange(4), recipe={})
    with pytest.raises(DataError, match=r"\[N, C, H, W\]"):
        CalibrationSet(images=np.zeros((4, 8, 8), dtype=np.float32), labels=np.arange(4), recipe={})


def test_reader_serves_batches_windows_and_rewinds(digits8: Any) -> None:
    cal = calibration_set_from_dataset(digits8.train, 7, num_classes=10)  # 70 images
    reader = cal.data_reader("input", batch_size=32)
    assert isinstance(reader, CalibrationReader) and len(reader) == 3
    batches = list(iter(reader.get_next, None))
    assert [b["input"].shape[0] for b in batches] == [32, 32, 6]
    assert np.array_equal(np.concatenate([b["input"] for b in batches]), cal.images)
    reader.rewind()
    assert reader.get_next() is not None
    reader.set_range(start_index=1, end_index=2)  # what ORT's strided calibration calls
    assert np.array_equal(reader.get_next()["input"], cal.images[32:64]) and reader.get_next() is None  # type: ignore[index]
    from onnxruntime.quantization import CalibrationDataReader

    assert isinstance(reader, CalibrationDataReader)  # ORT's own protocol check


def test_cache_round_trip_skips_image_loading(digits8: Any, tmp_path: Path) -> None:
    data = CountingDataset(digits8.train)
    first = calibration_set_from_dataset(data, 4, num_classes=10, source="digits", cache_dir=tmp_path)
    assert data.loads == 40
    files = list(tmp_path.glob("calibration-*.npz"))
    assert len(files) == 1
    second = calibration_set_from_dataset(data, 4, num_classes=10, source="digits", cache_dir=tmp_path)
    assert data.loads == 40 and second.sha256 == first.sha256 and second.to_json() == first.to_json()
    # a damaged cache file is rebuilt, not trusted
    files[0].write_bytes(b"not an npz")
    third = calibration_set_from_dataset(data, 4, num_classes=10, source="digits", cache_dir=tmp_path)
    assert data.loads == 80 and third.sha256 == first.sha256
    assert CalibrationSet.load(files[0]).sha256 == first.sha256
    with pytest.raises(ConfigError, match="source"):
        calibration_set_from_dataset(data, 4, num_classes=10, cache_dir=tmp_path)
