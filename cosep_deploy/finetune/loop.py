"""Training and fine-tuning: SGD with momentum and a cosine schedule, optional distillation.

One loop serves ``train`` (dense baseline) and ``finetune`` (pruned model, optionally distilled from the
dense teacher). Seeds make it deterministic on CPU.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from cosep_deploy.finetune.config import TrainConfig
from cosep_deploy.progress import Progress, resolve_progress

__all__ = ["TrainConfig", "TrainResult", "evaluate", "train_model"]


@dataclasses.dataclass(frozen=True)
class TrainResult:
    val_top1: float
    epochs: int
    seconds: float
    history: list[dict[str, float]]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def evaluate(model: nn.Module, loader: DataLoader[Any]) -> float:
    """Top-1 accuracy (fraction in [0, 1]) of ``model`` over ``loader``."""
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    model.eval()
    correct = total = 0
    try:
        with torch.no_grad():
            for images, labels in loader:
                logits = model(images.to(device))
                correct += int((logits.argmax(1).cpu() == labels).sum())
                total += int(labels.numel())
    finally:
        model.train(was_training)
    return correct / max(total, 1)


def _lr_at(step: int, total: int, warmup: int, base: float) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(total - warmup, 1)
    return 0.5 * base * (1.0 + math.cos(math.pi * progress))


def _train_loader(train_set: Dataset[Any], config: TrainConfig) -> tuple[DataLoader[Any], Any]:
    """Shuffled training batches (seeded); under torchrun a shard per process. Returns (loader, sampler)."""
    from cosep_deploy import distributed as ddist

    if ddist.is_distributed():  # under torchrun: a shard per process, gradients averaged by DDP
        sampler: DistributedSampler[Any] = DistributedSampler(train_set, shuffle=True, seed=config.seed)
        return DataLoader(train_set, batch_size=config.batch_size, sampler=sampler), sampler
    gen = torch.Generator().manual_seed(config.seed)
    return DataLoader(train_set, batch_size=config.batch_size, shuffle=True, generator=gen), None


def _wrapped(model: nn.Module, device: torch.device) -> nn.Module:
    """``model``, in DistributedDataParallel under torchrun."""
    from cosep_deploy import distributed as ddist

    if not ddist.is_distributed():
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def _optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD with Nesterov momentum; no weight decay on biases and normalisation parameters."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return torch.optim.SGD(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
        momentum=config.momentum,
        nesterov=True,
    )


def _loss(
    net: nn.Module, images: torch.Tensor, labels: torch.Tensor, config: TrainConfig, teacher: nn.Module | None
) -> torch.Tensor:
    """Cross-entropy, blended with the distillation term when a teacher is given."""
    logits = net(images)
    loss = F.cross_entropy(logits, labels, label_smoothing=config.label_smoothing)
    if teacher is None:
        return loss
    with torch.no_grad():
        t_logits = teacher(images)
    t = config.distill_temperature
    kd = F.kl_div(
        F.log_softmax(logits / t, 1),
        F.log_softmax(t_logits / t, 1),
        log_target=True,
        reduction="batchmean",
    ) * (t * t)
    return (1 - config.distill_alpha) * loss + config.distill_alpha * kd


def train_model(
    model: nn.Module,
    train_set: Dataset[Any],
    val_set: Dataset[Any],
    config: TrainConfig,
    *,
    teacher: nn.Module | None = None,
    progress: Progress | None = None,
    description: str = "training",
) -> TrainResult:
    """Train ``model`` in place and return its validation top-1.

    With a ``teacher`` and ``distill_alpha > 0`` the loss is ``(1-a) CE + a T^2 KL(student/T || teacher/T)``.
    Build the optimizer here, after any pruning, since pruning replaces parameters.
    """
    prog = resolve_progress(progress)
    torch.manual_seed(config.seed)
    loader, sampler = _train_loader(train_set, config)
    val_loader: DataLoader[Any] = DataLoader(val_set, batch_size=256)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    net = _wrapped(model, device)
    opt = _optimizer(model, config)
    steps_per_epoch = len(loader)
    total_steps = steps_per_epoch * config.epochs
    warmup = steps_per_epoch * config.warmup_epochs
    kd_teacher = teacher if teacher is not None and config.distill_alpha > 0 else None
    if teacher is not None:
        teacher.eval()
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    step = 0
    with prog.task(description, total=total_steps) as task:
        for epoch in range(config.epochs):
            if sampler is not None:
                sampler.set_epoch(epoch)
            net.train()
            running = 0.0
            for images, labels in loader:
                images, labels = images.to(device), labels.to(device)
                for group in opt.param_groups:
                    group["lr"] = _lr_at(step, total_steps, warmup, config.lr)
                loss = _loss(net, images, labels, config, kd_teacher)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                running += float(loss.detach())
                step += 1
                task.advance()
            acc = evaluate(model, val_loader)
            history.append({"epoch": epoch + 1, "loss": running / max(steps_per_epoch, 1), "val_top1": acc})
            task.describe(f"{description} (epoch {epoch + 1}/{config.epochs}, val top-1 {100 * acc:.2f}%)")
    model.eval()
    final = history[-1]["val_top1"] if history else evaluate(model, val_loader)
    return TrainResult(val_top1=final, epochs=config.epochs, seconds=time.perf_counter() - start, history=history)
