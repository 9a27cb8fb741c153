"""Labelled image data for every stage: spec strings, loaders, class-balanced sampling.

A data spec string names the dataset (``digits`` by default, ``cifar10:PATH``, ``cifar100:PATH``,
``imagefolder:PATH``, ``synthetic:C``), ``load_dataset`` turns it into a :class:`DatasetBundle` (train and
val splits yielding ``(float [C,H,W], int)``), and the sampling helpers draw seeded, class-balanced
subsets for calibration and class-conditional statistics. Nothing is ever downloaded. scikit-learn and
torchvision are imported only when a dataset that needs them is loaded.
"""

from cosep_deploy.data.bundle import DatasetBundle, TensorImageDataset
from cosep_deploy.data.load import load_dataset
from cosep_deploy.data.sampling import (
    ClassBalancedSubset,
    class_balanced_indices,
    dataset_labels,
    make_loader,
    stratified_split,
)
from cosep_deploy.data.spec import DATASET_NAMES, VALID_FORMS, DataSpec, parse_data_spec

__all__ = [
    "DATASET_NAMES",
    "VALID_FORMS",
    "ClassBalancedSubset",
    "DataSpec",
    "DatasetBundle",
    "TensorImageDataset",
    "class_balanced_indices",
    "dataset_labels",
    "load_dataset",
    "make_loader",
    "parse_data_spec",
    "stratified_split",
]
