"""Forward passes on a CPU's cores: whole passes per core instead of every operation split.

The blocks of a 256-patch pass are a few dozen small operations (a (12544, 48) LayerNorm, a
(768, 49, 49) attention). Split over torch's intra-op threads, every one of them ends at an
OpenMP barrier, where a core waits for the slowest; on a machine shared with other jobs, one
descheduled thread stalls them all. :func:`map_batches` instead sets torch to one intra-op thread
and runs independent passes on a pool of Python threads (torch releases the GIL inside its
operations), so each core runs whole passes. The results are put back in the order of the
batches, and each pass computes exactly what it computes alone on one thread, so the output does
not depend on the number of workers. The caller's thread count is restored afterwards.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

import torch

__all__ = ["map_batches"]

T = TypeVar("T")


def map_batches(fn: Callable[[int], T], starts: range, workers: int) -> list[T]:
    """``[fn(s) for s in starts]``, on ``workers`` single-threaded Python threads.

    Args:
        fn: One forward pass, from the index of its first item; it must not write shared state.
        starts: The first item of each pass.
        workers: Python threads; 1 (or a single pass) runs in the calling thread, with torch's
            intra-op threads as the caller set them.

    Returns:
        The results in the order of ``starts``.
    """
    workers = min(int(workers), len(starts))
    if workers <= 1:
        return [fn(s) for s in starts]
    before = torch.get_num_threads()

    def one_thread(s: int) -> T:
        # A new thread takes torch's global count at its first parallel operation; setting it
        # here as well makes the single thread explicit (and MKL's count per thread).
        if torch.get_num_threads() != 1:
            torch.set_num_threads(1)
        return fn(s)

    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hsizoo-predict") as ex:
            return list(ex.map(one_thread, starts))
    finally:
        torch.set_num_threads(before)
