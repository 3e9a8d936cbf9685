"""The one digest files are checked by against published checksums: :func:`file_sha256`
(checkpoints, dataset downloads, pretraining runs).

Nothing is memoised: a checkpoint is hashed again whenever it is loaded, because a file changed
in place can keep its size and modification time (``os.utime``), and only its bytes tell.
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["file_sha256"]


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file, streamed in 1 MiB chunks by huggingface_hub's ``sha_fileobj``.

    Args:
        path: File to hash (symlinks are followed, so Hub-cache pointers hash their blob).

    Returns:
        The lower-case hex digest.
    """
    from huggingface_hub.utils.sha import sha_fileobj

    with open(Path(path).resolve(), "rb") as f:
        return sha_fileobj(f).hex()
