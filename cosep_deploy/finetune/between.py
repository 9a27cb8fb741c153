"""The paper's short fine-tune between layers of the sequential schedule: after each group is pruned,
train on a random fraction of the training set for a few epochs (CIFAR settings: 2 epochs on 25%, SGD
lr 0.01 halved after the first epoch; the paper gives neither optimizer nor batch size: we use SGD with
momentum 0.9, weight decay 5e-4, batch 64). The optimizer is built per call, since pruning replaces the
parameters."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from cosep_deploy.errors import ConfigError

__all__ = ["BetweenLayers", "BetweenLayersConfig"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class BetweenLayersConfig:
    epochs: int = 2
    fraction: float = 0.25
    lr: float = 0.01  # halved after the first epoch
    batch_size: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 0 or not 0 < self.fraction <= 1 or not self.lr > 0 or self.batch_size < 1:
            raise ConfigError(
                f"between-layer fine-tune needs epochs >= 0, fraction in (0, 1], lr > 0, batch >= 1; got {self}"
            )


class BetweenLayers:
    """Callable ``(model, root) -> record`` for :func:`cosep_deploy.prune.prune`'s ``between_layers``."""

    def __init__(self, dataset: Dataset[Any], config: BetweenLayersConfig) -> None:
        self.dataset, self.config = dataset, config
        self.calls = 0

    def __call__(self, model: nn.Module, root: str) -> dict[str, Any]:
        cfg = self.config
        start = time.perf_counter()
        gen = torch.Generator().manual_seed(cfg.seed * 100_003 + self.calls)
        self.calls += 1
        n = len(self.dataset)  # type: ignore[arg-type]
        take = max(1, round(cfg.fraction * n))
        idx = torch.randperm(n, generator=gen)[:take].tolist()
        loader = DataLoader(Subset(self.dataset, idx), batch_size=cfg.batch_size, shuffle=True, generator=gen)
        device = next(model.parameters()).device
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=5e-4)
        losses = []
        model.train()
        try:
            for epoch in range(cfg.epochs):
                for group in opt.param_groups:
                    group["lr"] = cfg.lr if epoch == 0 else cfg.lr / 2
                for x, y in loader:
                    opt.zero_grad(set_to_none=True)
                    loss = F.cross_entropy(model(x.to(device)), torch.as_tensor(y).to(device))
                    loss.backward()
                    opt.step()
                    losses.append(float(loss.detach()))
        finally:
            model.eval()
        return {
            "root": root,
            "epochs": cfg.epochs,
            "images": take,
            "last_loss": round(losses[-1], 4) if losses else None,
            "seconds": round(time.perf_counter() - start, 2),
        }
