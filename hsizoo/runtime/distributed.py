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


def hardware_line(dev: torch.device, world: int) -> str:
    """The hardware in words, for manifests, cards and result records."""
    if dev.type == "cuda":
        name = torch.cuda.get_device_name(dev)
    else:
        from hsizoo.runtime.system import cpu_name

        name = f"CPU {cpu_name()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"
    return f"{world} x {name}" if world > 1 else name
