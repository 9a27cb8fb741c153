"""Data spec strings: one short, round-trippable string names a dataset and its options.

Grammar: ``NAME[:ARG][,key=value...]``. ``ARG`` is the dataset's positional argument (a path for
``cifar10``/``cifar100``/``imagefolder``, the class count for ``synthetic``); options follow as
comma-separated ``key=value`` pairs. ``str(parse_data_spec(s))`` gives the canonical form, which parses
back to an equal spec, so a spec recorded in an artifact reproduces the same data.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from cosep_deploy.errors import ConfigError, unknown_name

__all__ = ["DATASET_NAMES", "VALID_FORMS", "DataSpec", "parse_data_spec"]

VALID_FORMS = (
    "digits[:size=N,channels=1|3,seed=S]",
    "cifar10:PATH[,size=N,channels=1|3,augment=0|1]",
    "cifar100:PATH[,size=N,channels=1|3,augment=0|1]",
    "imagefolder:PATH[,size=N,channels=1|3,augment=0|1]",
    "synthetic:C[,size=N,channels=K,n=N,seed=S]",
)

# dataset name -> the options it accepts (the positional argument is handled separately)
_OPTIONS: dict[str, tuple[str, ...]] = {
    "digits": ("size", "channels", "seed"),
    "cifar10": ("size", "channels", "augment"),
    "cifar100": ("size", "channels", "augment"),
    "imagefolder": ("size", "channels", "augment"),
    "synthetic": ("size", "channels", "n", "seed"),
}
DATASET_NAMES: tuple[str, ...] = tuple(_OPTIONS)
_PATH_DATASETS = frozenset({"cifar10", "cifar100", "imagefolder"})
_OPTION_ORDER = ("size", "channels", "n", "seed", "augment")


def _forms() -> str:
    return "valid forms: " + "; ".join(VALID_FORMS)


@dataclasses.dataclass(frozen=True, kw_only=True)
class DataSpec:
    """A parsed data spec. ``None`` options mean "the dataset's default" (resolved by ``load_dataset``)."""

    name: str = "digits"
    path: str | None = None  # cifar10 / cifar100 / imagefolder
    num_classes: int | None = None  # synthetic only
    size: int | None = None  # square image side after resizing
    channels: int | None = None
    n: int | None = None  # synthetic: training samples
    seed: int | None = None  # digits: split seed; synthetic: generation seed
    augment: bool = False  # random crop + flip on the training split

    def __post_init__(self) -> None:
        if self.name not in _OPTIONS:
            raise ConfigError(unknown_name("dataset", self.name, DATASET_NAMES) + f" ({_forms()})")
        allowed = _OPTIONS[self.name]
        for key in _OPTION_ORDER:
            value = getattr(self, key)
            if key not in allowed and value not in (None, False):
                raise ConfigError(
                    f"dataset {self.name!r} takes no option {key!r}; it accepts {', '.join(allowed)} ({_forms()})"
                )
        for key in ("size", "channels", "n", "num_classes"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ConfigError(f"option {key} must be a positive integer, found {value!r}")
        if self.seed is not None and (not isinstance(self.seed, int) or self.seed < 0):
            raise ConfigError(f"option seed must be a non-negative integer, found {self.seed!r}")
        if self.name in _PATH_DATASETS and not self.path:
            raise ConfigError(f"dataset {self.name!r} needs a path, e.g. '{self.name}:/data/{self.name}'")
        if self.name not in _PATH_DATASETS and self.path is not None:
            raise ConfigError(f"dataset {self.name!r} takes no path ({_forms()})")
        if self.name != "synthetic" and self.num_classes is not None:
            raise ConfigError(f"only the synthetic dataset takes a class count, not {self.name!r}")

    def options(self) -> dict[str, Any]:
        """The options that are set, in canonical order."""
        out: dict[str, Any] = {}
        for key in _OPTION_ORDER:
            value = getattr(self, key)
            if value is not None and value is not False:
                out[key] = value
        return out

    def __str__(self) -> str:
        parts: list[str] = []
        if self.path is not None:
            parts.append(self.path)
        if self.num_classes is not None:
            parts.append(str(self.num_classes))
        for key, value in self.options().items():
            parts.append(f"{key}={int(value) if isinstance(value, bool) else value}")
        return self.name + (":" + ",".join(parts) if parts else "")

    def to_json(self) -> dict[str, Any]:
        return {"spec": str(self), **dataclasses.asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DataSpec:
        """Rebuild from :meth:`to_json` output (the canonical string is authoritative)."""
        if isinstance(data.get("spec"), str):
            return parse_data_spec(data["spec"])
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ConfigError(f"data spec JSON has unknown keys {unknown}; expected some of {sorted(fields)}")
        return cls(**data)


def _parse_int(key: str, text: str, spec: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"data spec {spec!r}: option {key} must be an integer, found {text!r} ({_forms()})") from None


def _parse_bool(key: str, text: str, spec: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"data spec {spec!r}: option {key} must be 0 or 1, found {text!r}")


def _is_option(token: str) -> bool:
    key, sep, _ = token.partition("=")
    return bool(sep) and key.strip().isidentifier()


def parse_data_spec(spec: str | DataSpec | None) -> DataSpec:
    """Parse a data spec string (``None`` or ``""`` means ``digits``); a :class:`DataSpec` passes through.

    For path datasets, trailing ``key=value`` tokens are options and everything before them is the path,
    so a path may itself contain commas.
    """
    if isinstance(spec, DataSpec):
        return spec
    if spec is None or not spec.strip():
        return DataSpec()
    if not isinstance(spec, str):
        raise ConfigError(f"a data spec must be a string, found {type(spec).__name__} ({_forms()})")
    text = spec.strip()
    name, _, rest = text.partition(":")
    name = name.strip().lower()
    if name not in _OPTIONS:
        raise ConfigError(unknown_name("dataset", name, DATASET_NAMES) + f" ({_forms()})")
    tokens = rest.split(",") if rest else []
    fields: dict[str, Any] = {"name": name}

    if name in _PATH_DATASETS:
        # options are the trailing key=value tokens; the path is what comes before them
        cut = len(tokens)
        while cut > 0 and _is_option(tokens[cut - 1]) and tokens[cut - 1].split("=")[0] in _OPTIONS[name]:
            cut -= 1
        path = ",".join(tokens[:cut]).strip()
        if not path:
            raise ConfigError(f"data spec {spec!r} names no path; write '{name}:PATH' ({_forms()})")
        fields["path"] = path
        tokens = tokens[cut:]
    elif tokens and not _is_option(tokens[0]):
        if name != "synthetic":
            raise ConfigError(f"data spec {spec!r}: {tokens[0]!r} is not a key=value option ({_forms()})")
        fields["num_classes"] = _parse_int("C (class count)", tokens[0].strip(), spec)
        tokens = tokens[1:]

    for token in tokens:
        if not _is_option(token):
            raise ConfigError(f"data spec {spec!r}: {token!r} is not a key=value option ({_forms()})")
        key, _, value = token.partition("=")
        key = key.strip()
        if key not in _OPTIONS[name]:
            raise ConfigError(f"data spec {spec!r}: " + unknown_name("option", key, _OPTIONS[name]))
        if key in fields:
            raise ConfigError(f"data spec {spec!r} sets option {key} twice")
        fields[key] = _parse_bool(key, value, spec) if key == "augment" else _parse_int(key, value, spec)

    if name == "synthetic" and "num_classes" not in fields:
        fields["num_classes"] = 10
    try:
        return DataSpec(**fields)
    except ConfigError as exc:
        raise ConfigError(f"data spec {spec!r}: {exc}") from None
