"""torch.distributed plumbing for statistics collection and fine-tuning under ``torchrun``.

Launch any stage with ``torchrun --nproc_per_node N -m cosep_deploy <command> ...``: each process takes
a shard of the data; class statistics are sums, so they all-reduce exactly; training wraps the model in
DistributedDataParallel. Only rank 0 writes artifacts. gloo is used on CPU and nccl on GPUs. This is the
torchrun's environment variables are read in :mod:`cosep_deploy.env`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch.utils.data import Dataset, Subset

from cosep_deploy.env import launched_by_torchrun, local_rank

__all__ = [
    "barrier",
    "finish",
    "init_from_env",
    "is_distributed",
    "is_main_process",
    "launched_by_torchrun",
    "rank",
    "shard_dataset",
    "world_size",
]

T = TypeVar("T")


def init_from_env() -> bool:
    """Join the process group torchrun describes (gloo on CPU, nccl with CUDA); True if distributed."""
    if not launched_by_torchrun():
        return False
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank())
        dist.init_process_group(backend=backend)
    return True


def finish(exit_code: int = 0) -> None:
    """End a torchrun worker: leave the process group together, then exit without interpreter teardown.

    With gloo, a worker can abort during interpreter finalization even after ``destroy_process_group``
    ("terminate called without an active exception": gloo's C++ threads still hold Python objects while
    the interpreter is torn down; see pytorch/pytorch PR 179291), which torchrun reports as a failed run.
    So once the group is gone and output is flushed, the worker exits with ``os._exit``. Not distributed:
    returns and the caller exits normally.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    if exit_code == 0:
        dist.barrier()  # only when every rank succeeded: a failed rank would leave the others waiting
    dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def shard_dataset(dataset: Dataset[T], *, indices: Sequence[int] | None = None) -> Dataset[T]:
    """This process's share of ``dataset`` (every world_size-th sample, offset by rank)."""
    if not is_distributed():
        return dataset
    n = len(indices) if indices is not None else len(dataset)  # type: ignore[arg-type]
    own = list(range(n))[rank() :: world_size()]
    base: Any = dataset
    return Subset(base, [indices[i] for i in own] if indices is not None else own)
