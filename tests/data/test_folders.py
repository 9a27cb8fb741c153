"""CIFAR batches in torchvision's layout and ImageNet-style image folders, built tiny in tmp_path."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from cosep_deploy.data import class_balanced_indices, dataset_labels, load_dataset
from cosep_deploy.errors import DataError

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _batch(rng: np.random.Generator, n: int, labels_key: str, classes: int) -> dict[str, object]:
    return {
        "batch_label": "fake batch",
        labels_key: [int(v) for v in rng.integers(0, classes, n)],
        "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        "filenames": [f"img_{i}.png" for i in range(n)],
    }


def _dump(path: Path, obj: object) -> None:
    with open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=2)  # the protocol of the official (Python 2) files


def write_fake_cifar10(root: Path, per_batch: int = 4, test: int = 6) -> Path:
    """The files ``torchvision.datasets.CIFAR10(root, download=True)`` leaves, with random content."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(1, 6):
        _dump(folder / f"data_batch_{i}", _batch(rng, per_batch, "labels", 10))
    _dump(folder / "test_batch", _batch(rng, test, "labels", 10))
    _dump(folder / "batches.meta", {"label_names": CIFAR10_NAMES, "num_cases_per_batch": per_batch})
    return root


def write_fake_cifar100(root: Path) -> Path:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for name, n in (("train", 12), ("test", 5)):
        batch = _batch(rng, n, "fine_labels", 100)
        batch["coarse_labels"] = [v // 5 for v in batch["fine_labels"]]  # type: ignore[attr-defined]
        _dump(folder / name, batch)
    _dump(folder / "meta", {"fine_label_names": [f"c{i}" for i in range(100)], "coarse_label_names": []})
    return root


def test_cifar10_from_torchvision_layout(tmp_path: Path) -> None:
    root = write_fake_cifar10(tmp_path)
    bundle = load_dataset(f"cifar10:{root}")
    assert (len(bundle.train), len(bundle.val)) == (20, 6)  # type: ignore[arg-type]
    assert bundle.num_classes == 10 and bundle.class_names == CIFAR10_NAMES
    assert bundle.input_shape == (3, 32, 32) and not bundle.is_synthetic
    image, label = bundle.train[0]
    assert tuple(image.shape) == (3, 32, 32) and isinstance(label, int)
    # pixel (channel 0, row 0, col 0) is byte 0 of the row; check the standard CIFAR normalisation
    with open(root / "cifar-10-batches-py" / "data_batch_1", "rb") as fh:
        raw = pickle.load(fh, encoding="latin1")
    expected = (raw["data"][0, 0] / 255.0 - 0.4914) / 0.2470
    assert float(image[0, 0, 0]) == pytest.approx(expected, abs=1e-5)
    assert label == raw["labels"][0]
    assert dataset_labels(bundle.train)[:4].tolist() == raw["labels"]


def test_cifar10_matches_torchvision_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Our fake files are the real format: torchvision (md5 check disabled) reads the same data."""
    import torchvision.datasets.cifar as tv_cifar

    root = write_fake_cifar10(tmp_path)
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *args, **kwargs: True)
    theirs = tv_cifar.CIFAR10(str(root), train=False, download=False)
    ours = load_dataset(f"cifar10:{root}").val
    assert list(theirs.targets) == dataset_labels(ours).tolist()
    assert np.array_equal(theirs.data, ours.data.permute(0, 2, 3, 1).numpy())  # type: ignore[attr-defined]
    assert theirs.classes == CIFAR10_NAMES


def test_cifar_resize_gray_and_augment(tmp_path: Path) -> None:
    root = write_fake_cifar10(tmp_path)
    small = load_dataset(f"cifar10:{root},size=16,channels=1")
    assert small.input_shape == (1, 16, 16)
    assert tuple(small.val[0][0].shape) == (1, 16, 16)
    aug = load_dataset(f"cifar10:{root},augment=1")
    torch.manual_seed(0)
    views = [aug.train[0][0] for _ in range(6)]
    assert all(tuple(v.shape) == (3, 32, 32) for v in views)
    assert any(not torch.equal(views[0], v) for v in views[1:])  # random crops/flips differ
    assert torch.equal(aug.val[0][0], aug.val[0][0])  # val is never augmented


def test_cifar100_fine_labels(tmp_path: Path) -> None:
    root = write_fake_cifar100(tmp_path)
    bundle = load_dataset(f"cifar100:{root}")
    assert bundle.num_classes == 100 and bundle.class_names[3] == "c3"
    assert (len(bundle.train), len(bundle.val)) == (12, 5)  # type: ignore[arg-type]
    assert int(dataset_labels(bundle.train).max()) < 100


def test_cifar_reads_pickles_written_by_old_numpy(tmp_path: Path) -> None:
    """The official files name ``numpy.core.multiarray`` (numpy 1.x); numpy 2 renamed it ``numpy._core``."""
    root = write_fake_cifar10(tmp_path)
    path = root / "cifar-10-batches-py" / "test_batch"
    old_style = path.read_bytes().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray" in old_style
    path.write_bytes(old_style)
    assert len(load_dataset(f"cifar10:{root}").val) == 6  # type: ignore[arg-type]


def test_cifar_missing_file_is_named(tmp_path: Path) -> None:
    root = write_fake_cifar10(tmp_path)
    os.remove(root / "cifar-10-batches-py" / "test_batch")
    with pytest.raises(DataError, match="missing test_batch") as info:
        load_dataset(f"cifar10:{root}")
    assert str(root) in str(info.value)


def test_cifar_truncated_file_is_a_data_error(tmp_path: Path) -> None:
    root = write_fake_cifar10(tmp_path)
    path = root / "cifar-10-batches-py" / "data_batch_3"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match="data_batch_3"):
        load_dataset(f"cifar10:{root}")


class _Payload:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.getenv, ("HOME",))  # harmless, but any callable here must be refused


def test_cifar_reader_refuses_code_in_pickles(tmp_path: Path) -> None:
    root = write_fake_cifar10(tmp_path)
    _dump(root / "cifar-10-batches-py" / "data_batch_2", {"data": _Payload(), "labels": []})
    with pytest.raises(DataError, match="refusing to load"):
        load_dataset(f"cifar10:{root}")


def _png(path: Path, color: tuple[int, int, int]) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (24, 20), color).save(path)


def write_image_tree(root: Path, classes: dict[str, int], val: int = 2) -> Path:
    for ci, (name, n) in enumerate(classes.items()):
        for i in range(n):
            _png(root / "train" / name / f"{i}.png", (40 * ci, 200 - 40 * ci, 7 * i))
        for i in range(val):
            _png(root / "val" / name / f"{i}.png", (40 * ci, 200 - 40 * ci, 90))
    return root


def test_imagefolder_loads_and_resizes(tmp_path: Path) -> None:
    root = write_image_tree(tmp_path / "tiny", {"cat": 3, "dog": 4})
    bundle = load_dataset(f"imagefolder:{root},size=16")
    assert bundle.class_names == ["cat", "dog"] and bundle.num_classes == 2
    assert bundle.input_shape == (3, 16, 16)
    assert (len(bundle.train), len(bundle.val)) == (7, 4)  # type: ignore[arg-type]
    image, label = bundle.val[3]
    assert tuple(image.shape) == (3, 16, 16) and label == 1
    assert dataset_labels(bundle.train).tolist() == [0, 0, 0, 1, 1, 1, 1]
    idx = class_balanced_indices(dataset_labels(bundle.train), 2)
    assert sorted(dataset_labels(bundle.train)[idx].tolist()) == [0, 0, 1, 1]
    gray = load_dataset(f"imagefolder:{root}", image_size=8, channels=1)
    assert tuple(gray.train[0][0].shape) == (1, 8, 8)


def test_imagefolder_missing_split(tmp_path: Path) -> None:
    root = write_image_tree(tmp_path / "tiny", {"cat": 1}, val=0)
    with pytest.raises(DataError, match=r"val"):
        load_dataset(f"imagefolder:{root}")


def test_imagefolder_empty_classes(tmp_path: Path) -> None:
    (tmp_path / "empty" / "train" / "cat").mkdir(parents=True)
    (tmp_path / "empty" / "val" / "cat").mkdir(parents=True)
    with pytest.raises(DataError, match="unusable"):
        load_dataset(f"imagefolder:{tmp_path / 'empty'}")


def test_imagefolder_class_mismatch(tmp_path: Path) -> None:
    root = write_image_tree(tmp_path / "tiny", {"cat": 1, "dog": 1})
    _png(root / "val" / "emu" / "0.png", (1, 2, 3))
    with pytest.raises(DataError, match="emu"):
        load_dataset(f"imagefolder:{root}")
