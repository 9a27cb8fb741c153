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
    from cosep_deploy import distributed as ddist

    prog = resolve_progress(progress)
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    sampler: DistributedSampler[Any] | None = None
    if ddist.is_distributed():  # under torchrun: a shard per process, gradients averaged by DDP
        sampler = DistributedSampler(train_set, shuffle=True, seed=config.seed)
        loader: DataLoader[Any] = DataLoader(train_set, batch_size=config.batch_size, sampler=sampler)
    else:
        loader = DataLoader(train_set, batch_size=config.batch_size, shuffle=True, generator=gen)
    val_loader: DataLoader[Any] = DataLoader(val_set, batch_size=256)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    net: nn.Module = model
    if ddist.is_distributed():
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    opt = torch.optim.SGD(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
        momentum=config.momentum,
        nesterov=True,
    )
    steps_per_epoch = len(loader)
    total_steps = steps_per_epoch * config.epochs
    warmup = steps_per_epoch * config.warmup_epochs
    use_kd = teacher is not None and config.distill_alpha > 0
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
                logits = net(images)
                loss = F.cross_entropy(logits, labels, label_smoothing=config.label_smoothing)
                if use_kd:
                    assert teacher is not None
                    with torch.no_grad():
                        t_logits = teacher(images)
                    t = config.distill_temperature
                    kd = F.kl_div(
                        F.log_softmax(logits / t, 1),
                        F.log_softmax(t_logits / t, 1),
                        log_target=True,
                        reduction="batchmean",
                    ) * (t * t)
                    loss = (1 - config.distill_alpha) * loss + config.distill_alpha * kd
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
