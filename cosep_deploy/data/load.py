"""``load_dataset``: one entry point from a data spec to a :class:`DatasetBundle`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from cosep_deploy.data.bundle import DatasetBundle
from cosep_deploy.data.spec import DataSpec, parse_data_spec
from cosep_deploy.errors import ConfigError

__all__ = ["load_dataset"]

_Loader = Callable[..., DatasetBundle]


def _loaders() -> dict[str, _Loader]:
    # imported here so a spec can be parsed without loading any dataset code
    from cosep_deploy.data.digits import load_digits_bundle
    from cosep_deploy.data.folders import load_cifar_bundle, load_imagefolder_bundle
    from cosep_deploy.data.synthetic import load_synthetic_bundle

    return {
        "digits": load_digits_bundle,
        "cifar10": load_cifar_bundle,
        "cifar100": load_cifar_bundle,
        "imagefolder": load_imagefolder_bundle,
        "synthetic": load_synthetic_bundle,
    }


def _merge(key: str, from_spec: int | None, from_arg: int | None, spec: DataSpec) -> int | None:
    if from_spec is not None and from_arg is not None and from_spec != from_arg:
        raise ConfigError(
            f"data spec '{spec}' sets {key}={from_spec} but {key}={from_arg} was also requested; "
            f"drop one of them or make them agree"
        )
    return from_spec if from_spec is not None else from_arg


def load_dataset(
    spec: str | DataSpec | None = None,
    *,
    image_size: int | None = None,
    channels: int | None = None,
    seed: int = 0,
) -> DatasetBundle:
    """Load the dataset a spec names (default ``digits``).

    ``image_size`` and ``channels`` fill in what the spec leaves open (a model's expected input, say);
    if the spec sets them too, the two must agree. ``seed`` drives the digits split and synthetic
    generation unless the spec sets ``seed=``; it never affects CIFAR or image folders, whose splits
    are fixed. The returned bundle's ``spec`` has these choices filled in.
    """
    parsed = parse_data_spec(spec)
    for key, value in (("image_size", image_size), ("channels", channels)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ConfigError(f"{key} must be a positive integer, found {value!r}")
    size = _merge("size", parsed.size, image_size, parsed)
    chans = _merge("channels", parsed.channels, channels, parsed)
    takes_seed = parsed.name in ("digits", "synthetic")
    eff_seed = parsed.seed if parsed.seed is not None else seed
    resolved = dataclasses.replace(
        parsed,
        size=size,
        channels=chans,
        seed=eff_seed if takes_seed and (parsed.seed is not None or seed != 0) else None,
    )
    return _loaders()[parsed.name](resolved, size=size, channels=chans, seed=eff_seed)
