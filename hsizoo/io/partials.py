"""Hidden partial names of outputs being written, and removal of those a dead writer left.

A partial file or folder sits beside its target under ``.<name>.hsizoo-partial-<pid>-<hex>``
(no raster or image extension, so it never opens as a finished map). The process id lets a
later writer tell a dead writer's leftover from a live one's work (:func:`remove_stale_partials`).
"""
from __future__ import annotations

import os
import secrets
import shutil
import time
from pathlib import Path

__all__ = ["PARTIAL_TAG", "STALE_AFTER_S", "partial_path", "remove_stale_partials"]

#: Marks the hidden partial files and folders; never a raster or image extension.
PARTIAL_TAG = ".hsizoo-partial"


def partial_path(target: Path) -> Path:
    """A fresh hidden name beside ``target`` for its partial file or folder (with this process's
    id, so that a later writer can tell a dead writer's leftover from a live one's work)."""
    remove_stale_partials(target)
    return target.with_name(f".{target.name}{PARTIAL_TAG}-{os.getpid()}-{secrets.token_hex(4)}")


#: A partial untouched for this long, whose writer is gone, is a leftover.
STALE_AFTER_S = 3600.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's), or cannot tell: keep its files
    return True


def remove_stale_partials(target: str | os.PathLike[str], max_age_s: float = STALE_AFTER_S
                          ) -> list[Path]:
    """Remove partial files and folders of ``target`` left by writers that died mid-write.

    A partial counts as a leftover only when its name carries a process id that no longer
    exists on this machine and it has not been modified for ``max_age_s`` seconds (a writer on
    another machine sharing the folder keeps touching its partial while it works). Partials
    without a process id (older hsizoo versions) are left alone. Errors are ignored: cleaning up
    never stops a write.

    Returns:
        The paths removed.
    """
    target = Path(target)
    prefix = f".{target.name}{PARTIAL_TAG}-"
    removed: list[Path] = []
    try:
        candidates = [p for p in target.parent.iterdir() if p.name.startswith(prefix)]
    except OSError:
        return removed
    now = time.time()
    for p in candidates:
        pid = p.name[len(prefix):].split("-")[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        try:
            if now - p.lstat().st_mtime < max_age_s:
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
            removed.append(p)
        except OSError:
            continue
    return removed
