"""Training and fine-tuning (SGD + cosine, optional distillation from the dense model)."""

from .loop import TrainConfig, TrainResult, evaluate, train_model

__all__ = ["TrainConfig", "TrainResult", "evaluate", "train_model"]
