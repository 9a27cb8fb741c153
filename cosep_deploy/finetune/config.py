"""How to train, as a torch-free config, and the defaults of each stage that trains: the CLI reads its
option defaults from here, so a command and the Python API never disagree."""

from __future__ import annotations

import dataclasses
from typing import Any

from cosep_deploy.errors import ConfigError

__all__ = ["DENSE_TRAINING", "FINETUNING", "TrainConfig"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """How to train. ``None`` fields take the documented defaults in :meth:`resolved`."""

    epochs: int = 15
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    seed: int = 0
    distill_alpha: float = 0.0  # weight of the KD loss when a teacher is given (0 = off)
    distill_temperature: float = 4.0
    warmup_epochs: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 0:
            raise ConfigError(f"epochs must be >= 0, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {self.batch_size}")
        if not self.lr > 0:
            raise ConfigError(f"learning rate must be > 0, got {self.lr}")
        if not 0.0 <= self.distill_alpha <= 1.0:
            raise ConfigError(f"distill_alpha must be in [0, 1], got {self.distill_alpha}")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: the dense baseline (``train``, and the pipeline's train stage)
DENSE_TRAINING = TrainConfig()
#: fine-tuning after pruning: distillation from the dense model recovers more in the same epochs
#: (bench/compare_methods.py)
FINETUNING = TrainConfig(epochs=12, lr=0.02, distill_alpha=0.5)
