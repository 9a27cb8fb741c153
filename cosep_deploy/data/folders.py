"""Datasets on disk: CIFAR-10/100 in torchvision's folder layout and ImageNet-style image folders.

This tool never downloads data. CIFAR is read from the python pickle batches that torchvision's
``CIFAR10(root, download=True)`` leaves behind (``root/cifar-10-batches-py/data_batch_1..5, test_batch,
batches.meta``; ``root/cifar-100-python/train, test, meta``). We read them ourselves instead of through
``torchvision.datasets.CIFAR10`` for two reasons: torchvision insists on the md5 of the full official
files (so no subset or re-packed copy loads), and it unpickles without restriction, while our reader
accepts only numpy arrays, lists and strings, so a tampered batch file cannot run code.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from cosep_deploy.data.bundle import DatasetBundle
from cosep_deploy.data.spec import DataSpec
from cosep_deploy.errors import ConfigError, DataError, InternalError

__all__ = ["CIFAR_LAYOUT", "CifarBatches", "load_cifar_bundle", "load_imagefolder_bundle"]

# where torchvision's CIFAR downloads put each file, and the standard per-channel normalisation
CIFAR_LAYOUT: dict[str, dict[str, Any]] = {
    "cifar10": {
        "title": "CIFAR-10",
        "folder": "cifar-10-batches-py",
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
        "meta": "batches.meta",
        "labels_key": "labels",
        "names_key": "label_names",
        "mean": (0.4914, 0.4822, 0.4465),
        "std": (0.2470, 0.2435, 0.2616),
    },
    "cifar100": {
        "title": "CIFAR-100",
        "folder": "cifar-100-python",
        "train": ["train"],
        "test": ["test"],
        "meta": "meta",
        "labels_key": "fine_labels",
        "names_key": "fine_label_names",
        "mean": (0.5071, 0.4865, 0.4409),
        "std": (0.2673, 0.2564, 0.2762),
    },
}

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# ITU-R BT.601 luma, the weights torchvision's Grayscale uses
_LUMA = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)

_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),  # bytes pickled by Python 3 with protocol 2
}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles only numpy arrays and builtin containers: anything else is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")
        with warnings.catch_warnings():  # numpy 2 warns when old pickles name numpy.core
            warnings.simplefilter("ignore", DeprecationWarning)
            return super().find_class(module, name)


def _load_pickle(path: Path, what: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            obj = _ArrayUnpickler(fh, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
        raise DataError(f"{what} file {path} is corrupted or not a CIFAR batch ({exc}); re-extract it") from exc
    if not isinstance(obj, dict):
        raise DataError(f"{what} file {path} holds a {type(obj).__name__}, expected a dict")
    return obj


class CifarBatches(Dataset[tuple[torch.Tensor, int]]):
    """One CIFAR split in memory as uint8 [N,3,32,32]; yields normalised float [C,S,S] and an int label.

    ``augment`` applies the standard CIFAR training augmentation (pad 4 + random 32x32 crop, horizontal
    flip) using the global torch RNG, which ``make_loader`` seeds per worker.
    """

    def __init__(
        self,
        root: str | Path,
        name: str = "cifar10",
        *,
        train: bool = True,
        size: int = 32,
        channels: int = 3,
        augment: bool = False,
    ) -> None:
        layout = CIFAR_LAYOUT[name]
        folder = _cifar_folder(Path(root), name)
        datas: list[np.ndarray] = []
        targets: list[int] = []
        for file in layout["train" if train else "test"]:
            entry = _load_pickle(folder / file, layout["title"])
            data, labels = entry.get("data"), entry.get(layout["labels_key"])
            if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3072 or labels is None:
                raise DataError(
                    f"{layout['title']} file {folder / file} is malformed: expected 'data' uint8 [N,3072] "
                    f"and '{layout['labels_key']}', found keys {sorted(entry)}"
                )
            if len(labels) != data.shape[0]:
                raise DataError(f"{folder / file}: {data.shape[0]} images but {len(labels)} labels")
            datas.append(data.astype(np.uint8, copy=False))
            targets.extend(int(t) for t in labels)
        meta = _load_pickle(folder / layout["meta"], layout["title"])
        self.classes: list[str] = [str(c) for c in meta.get(layout["names_key"], [])]
        if not self.classes:
            raise DataError(f"{folder / layout['meta']} has no '{layout['names_key']}' list of class names")
        if targets and not 0 <= min(targets) <= max(targets) < len(self.classes):
            raise DataError(f"{folder}: labels out of range for {len(self.classes)} classes")
        self.data = torch.from_numpy(np.concatenate(datas).reshape(-1, 3, 32, 32))
        self.targets = targets
        self.size, self.channels, self.augment = size, channels, augment
        self._mean = torch.tensor(layout["mean"]).view(3, 1, 1)
        self._std = torch.tensor(layout["std"]).view(3, 1, 1)

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x = self.data[index].float().div_(255.0)
        if self.augment:
            padded = F.pad(x, (4, 4, 4, 4))
            top, left = (int(v) for v in torch.randint(0, 9, (2,)))
            x = padded[:, top : top + 32, left : left + 32]
            if bool(torch.rand(()) < 0.5):
                x = x.flip(-1)
        x = (x - self._mean) / self._std
        if self.channels == 1:
            x = (x * _LUMA).sum(0, keepdim=True)
        if self.size != 32:
            x = F.interpolate(x[None], size=(self.size, self.size), mode="bilinear", align_corners=False)[0]
        return x.contiguous(), self.targets[index]


def _cifar_folder(root: Path, name: str) -> Path:
    layout = CIFAR_LAYOUT[name]
    folder = root.expanduser() / layout["folder"]
    expected = [*layout["train"], *layout["test"], layout["meta"]]
    missing = [f for f in expected if not (folder / f).is_file()]
    if missing:
        found = "the folder is missing" if not folder.is_dir() else f"missing {', '.join(missing)}"
        raise DataError(
            f"{layout['title']} not found at {root}: expected {folder} (torchvision layout) holding "
            f"{', '.join(expected)}, {found}. This tool never downloads data: fetch it once with "
            f"torchvision.datasets.{'CIFAR10' if name == 'cifar10' else 'CIFAR100'}(root='{root}', "
            f"download=True) on a connected machine, or use the built-in 'digits' dataset"
        )
    return folder


def _spec_path(spec: DataSpec) -> str:
    if spec.path is None:  # DataSpec rejects path datasets without a path; reaching here is a bug
        raise InternalError(f"data spec {spec} has no path")
    return spec.path


def _check_channels(channels: int | None, name: str) -> int:
    channels = 3 if channels is None else channels
    if channels not in (1, 3):
        raise ConfigError(f"{name} supports channels=1 (grayscale) or channels=3, found channels={channels}")
    return channels


def load_cifar_bundle(spec: DataSpec, *, size: int | None, channels: int | None, seed: int) -> DatasetBundle:
    """CIFAR-10/100 train (50k) and test (10k, used as val) from ``spec.path``."""
    del seed  # the official split is fixed
    path = _spec_path(spec)
    size = 32 if size is None else size
    channels = _check_channels(channels, spec.name)
    train = CifarBatches(path, spec.name, train=True, size=size, channels=channels, augment=spec.augment)
    val = CifarBatches(path, spec.name, train=False, size=size, channels=channels, augment=False)
    title = CIFAR_LAYOUT[spec.name]["title"]
    aug = ", train augmentation crop+flip" if spec.augment else ""
    return DatasetBundle(
        train=train,
        val=val,
        num_classes=len(train.classes),
        input_shape=(channels, size, size),
        class_names=list(train.classes),
        spec=spec,
        description=f"{spec.name}: {title} from {spec.path}, {len(train)} train / {len(val)} val "
        f"(test split), {len(train.classes)} classes, {channels}x{size}x{size}{aug}",
        is_synthetic=False,
    )


def _load_image(path: str) -> Any:
    """One RGB image; an unreadable or corrupt file is a :class:`DataError` naming it, not a PIL traceback."""
    from PIL import Image, UnidentifiedImageError

    try:
        with open(path, "rb") as fh:
            return Image.open(fh).convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:  # PIL raises all of these
        raise DataError(f"cannot read image {path}: {exc}; remove or replace the file") from exc


def _image_folder(root: Path, split: str, transform: Any) -> Any:
    from torchvision.datasets import ImageFolder

    path = root / split
    if not path.is_dir():
        raise DataError(
            f"image folder split not found: expected {path} with one sub-folder per class "
            f"(ImageNet layout PATH/train/<class>/*.jpg, PATH/val/<class>/*.jpg)"
        )
    try:
        return ImageFolder(str(path), transform=transform, loader=_load_image)
    except (FileNotFoundError, RuntimeError) as exc:
        raise DataError(f"image folder {path} is unusable: {exc}; add class folders with images in them") from exc


def load_imagefolder_bundle(spec: DataSpec, *, size: int | None, channels: int | None, seed: int) -> DatasetBundle:
    """ImageNet-style folders: resize to ``size*256/224`` then center-crop ``size`` (default 224)."""
    del seed
    from torchvision import transforms

    root = Path(_spec_path(spec)).expanduser()
    if not root.is_dir():
        raise DataError(
            f"image folder dataset not found at {spec.path}: expected a directory with train/<class>/ and "
            f"val/<class>/ sub-folders; this tool never downloads data"
        )
    size = 224 if size is None else size
    channels = _check_channels(channels, "imagefolder")
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if channels == 3 else ((0.449,), (0.226,))
    tail: list[Any] = [transforms.ToTensor(), transforms.Normalize(mean, std)]
    if channels == 1:
        tail.insert(0, transforms.Grayscale(1))
    eval_tf = transforms.Compose([transforms.Resize(round(size * 256 / 224)), transforms.CenterCrop(size), *tail])
    train_tf = (
        transforms.Compose([transforms.RandomResizedCrop(size), transforms.RandomHorizontalFlip(), *tail])
        if spec.augment
        else eval_tf
    )
    train = _image_folder(root, "train", train_tf)
    train.eval_transform = eval_tf  # the same images without augmentation (pruning statistics use it)
    val = _image_folder(root, "val", eval_tf)
    if list(train.classes) != list(val.classes):
        only_train = sorted(set(train.classes) - set(val.classes))[:5]
        only_val = sorted(set(val.classes) - set(train.classes))[:5]
        raise DataError(
            f"{root}: train and val must have the same class folders (labels are folder indices); "
            f"only in train: {only_train}, only in val: {only_val}"
        )
    return DatasetBundle(
        train=train,
        val=val,
        num_classes=len(train.classes),
        input_shape=(channels, size, size),
        class_names=list(train.classes),
        spec=spec,
        description=f"imagefolder: {root}, {len(train)} train / {len(val)} val, "
        f"{len(train.classes)} classes, {channels}x{size}x{size}" + (", train augmentation" if spec.augment else ""),
        is_synthetic=False,
    )
