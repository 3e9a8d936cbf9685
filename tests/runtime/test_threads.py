"""Torch threads of a worker: explicit, shared between torchrun's local ranks, or the default."""
from __future__ import annotations

import pytest
import torch

from hsizoo.runtime import distributed
from hsizoo.runtime.distributed import worker_threads


@pytest.fixture(autouse=True)
def _restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_torchrun_ranks_split_the_cores(monkeypatch) -> None:
    monkeypatch.setattr(distributed, "usable_cores", lambda: 8)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert worker_threads() == 4 and torch.get_num_threads() == 4
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "16")  # more ranks than cores: one thread each
    assert worker_threads() == 1 and torch.get_num_threads() == 1


def test_explicit_threads_win_and_the_default_is_kept(monkeypatch) -> None:
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert worker_threads(3) == 3 and torch.get_num_threads() == 3
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    torch.set_num_threads(2)
    assert worker_threads() == 2 and torch.get_num_threads() == 2
    with pytest.raises(ValueError, match="threads must be >= 1"):
        worker_threads(0)
