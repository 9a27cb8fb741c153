"""Training and fine-tuning (SGD + cosine, optional distillation from the dense model).

The configs (:mod:`.config`) import no torch, so the CLI can read their defaults at start-up; the training
loop (:mod:`.loop`) is imported on first use of its names.
"""

from typing import Any

from cosep_deploy.finetune.config import DENSE_TRAINING, FINETUNING, TrainConfig

__all__ = ["DENSE_TRAINING", "FINETUNING", "TrainConfig", "TrainResult", "evaluate", "train_model"]

_FROM_LOOP = ("TrainResult", "evaluate", "train_model")


def __getattr__(name: str) -> Any:
    if name in _FROM_LOOP:
        from cosep_deploy.finetune import loop

        return getattr(loop, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
