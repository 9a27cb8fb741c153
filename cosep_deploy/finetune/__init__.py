"""Training and fine-tuning (SGD + cosine, optional distillation from the dense model)."""

from cosep_deploy.finetune.loop import TrainConfig, TrainResult, evaluate, train_model

__all__ = ["TrainConfig", "TrainResult", "evaluate", "train_model"]
