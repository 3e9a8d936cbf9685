"""torchrun support, shared by pretraining and prediction: process-group setup (gloo on CPUs, NCCL
on GPUs) and the hardware line recorded with results."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass
class DistInfo:
    """This process's place in the process group (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialised_here: bool = False


def setup_distributed(device: str | None) -> tuple[DistInfo, torch.device]:
    """Join the torchrun process group when ``WORLD_SIZE`` > 1; returns (place, device)."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        return DistInfo(), dev
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = (device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
    dev = torch.device(f"cuda:{local}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    here = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
        here = True
    return DistInfo(dist.get_rank(), dist.get_world_size(), local, here), dev


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask: a scheduler's allocation)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def worker_threads(threads: int | None = None) -> int:
    """Set this process's torch intra-op threads for a worker; returns the number set.

    Several processes on one machine must share its cores: each using every core makes their
    threads wait on one another (two prediction workers on two cores, each with two threads,
    were slower than one; ``benchmarks/predict_scaling.py``). So:

    * ``threads`` given (``--threads``): that many;
    * under torchrun with several ranks on this machine (``LOCAL_WORLD_SIZE`` > 1): usable
      cores // local ranks, at least 1. This replaces torchrun's blanket ``OMP_NUM_THREADS=1``,
      which leaves cores idle when a machine has more cores than ranks;
    * else torch's default (every usable core) is kept.

    Processes started side by side without torchrun (``--shard I/N`` jobs sharing a machine)
    cannot know of each other: give them ``--threads cores // jobs``.
    """
    import torch

    if threads is not None:
        if int(threads) < 1:
            raise ValueError(f"threads must be >= 1, got {threads}.")
        n = int(threads)
    else:
        local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        if local <= 1:
            return torch.get_num_threads()
        n = max(1, usable_cores() // local)
    torch.set_num_threads(n)
    return n


def hardware_line(dev: torch.device, world: int) -> str:
    """The hardware in words, for manifests, cards and result records."""
    if dev.type == "cuda":
        name = torch.cuda.get_device_name(dev)
    else:
        from hsizoo.runtime.system import cpu_name

        name = f"CPU {cpu_name()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"
    return f"{world} x {name}" if world > 1 else name
