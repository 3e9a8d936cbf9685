"""Units of a campaign's work: row bands of its scenes, shares, shard specs and lock files.

See :mod:`hsizoo.predict.campaign` for how workers use them.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

__all__ = ["Unit", "parse_shard", "plan_units", "take_lock", "rmdir_if_empty"]


@dataclass(frozen=True)


class Unit:
    """Rows ``row0:row1`` of scene number ``scene`` (file stem ``stem``)."""

    scene: int
    stem: str
    row0: int
    row1: int

    @property
    def name(self) -> str:
        return f"{self.row0:08d}-{self.row1:08d}.npz"


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> (I, N) with 0 <= I < N.

    Raises:
        ValueError: anything else, with the expected form.
    """
    try:
        i, n = (int(v) for v in str(text).split("/"))
    except ValueError:
        raise ValueError(f"--shard takes I/N (this worker's index and the number of workers, "
                         f"e.g. 0/4 ... 3/4); got {text!r}.") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"--shard {text}: need 0 <= I < N (e.g. $SLURM_ARRAY_TASK_ID/"
                         f"$SLURM_ARRAY_TASK_COUNT).")
    return i, n


def plan_units(shapes: Sequence[tuple[str, int, int, int]], max_unit_mb: float = 16.0,
               min_rows: int = 16) -> list[Unit]:
    """Cut scenes into row bands of even height that read at most ``max_unit_mb`` each.

    Small units share the work evenly between workers (worker r of N takes every N-th unit, so
    the slowest does at most one unit more than the others) and cost little: a unit computes
    only its own rows (the patch margin around them is read, not classified; the smoothing runs
    when the scene is assembled).

    Args:
        shapes: (stem, height, width, bands) per scene, in campaign order.
        max_unit_mb: Size of the pixels a unit reads (float32, all bands; its halo aside).
        min_rows: Fewest rows per unit (a very wide scene reads more than ``max_unit_mb``
            rather than cutting bands thinner than the patch margin).

    Returns:
        Units, scene by scene, top to bottom.
    """
    units = []
    for i, (stem, h, w, b) in enumerate(shapes):
        rows = max(1, int(max_unit_mb * 2 ** 20 // max(1, w * b * 4)))
        # bands needed, no thinner than min_rows; their heights differ by at most one row
        n = max(1, min(-(-h // rows), h // max(1, int(min_rows))))
        edges = [round(k * h / n) for k in range(n + 1)] if h else [0]
        units += [Unit(i, stem, a, b_) for a, b_ in zip(edges[:-1], edges[1:]) if b_ > a]
    return units


def take_lock(path: Path) -> bool:
    """Take an exclusive lock file; a lock left by a dead process of this host is taken over."""
    me = f"{socket.gethostname()} {os.getpid()}"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                host, pid = path.read_text().split()
            except (OSError, ValueError):
                return False
            from hsizoo.io.atomic import _alive

            if host != socket.gethostname() or _alive(int(pid)):
                return False
            path.unlink(missing_ok=True)  # its owner died: take it over
            continue
        with os.fdopen(fd, "w") as f:
            f.write(me)
        return True
    return False


def rmdir_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # not empty (another scene's parts) or already gone
