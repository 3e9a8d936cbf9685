"""One atomic writer for every file and folder hsizoo writes (maps, quicklooks, model folders,
downloads).

Nothing is ever half-written under a name a user would open. A file is written beside its target
under a hidden name that ends in ``.hsizoo-partial-XXXXXXXX`` (no raster or image extension, so a
killed process leaves nothing that opens as a finished map), flushed and fsynced, its size and
content checked, given the user's umask, and only then renamed over the target; the folder is
fsynced after the rename. On any failure the partial file is removed and a previous file under the
target name is left intact. A folder (a model checkpoint) is written as a new sibling folder and
swapped in as a whole, never file by file. A partial name carries the writer's process id: a
partial left by a killed writer (SIGKILL, power loss) is removed by the next write of the same
target once that process is gone and the partial has not changed for an hour
(:func:`remove_stale_partials`).

Outputs are checked twice: by :func:`check_output` before the work starts (the folder exists and
is writable, the target is not a folder, it exists only if overwriting was asked, there is room
for the estimated size), and again at the swap, where a target that another process created
meanwhile is not replaced unless overwriting was asked (:class:`OutputConflictError`).

Several outputs of one job (a class map and its confidence map, a quicklook, a model folder) are
committed together or not at all by :func:`hsizoo.io.commit.commit_together`: while it is active,
finished outputs are handed to it (:data:`TRANSACTION`) instead of being renamed one by one.
Files are checked against published checksums by one digest, :func:`file_sha256`
(:mod:`hsizoo.io.digest`, re-exported here).
"""
from __future__ import annotations

import contextlib
import contextvars
import ctypes
import errno
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hsizoo.io.digest import file_sha256  # one digest for every check; re-exported here
from hsizoo.io.partials import PARTIAL_TAG, STALE_AFTER_S, partial_path, remove_stale_partials

__all__ = ["OutputError", "OutputExistsError", "OutputConflictError", "OutputNotFoundError",
           "OutputIsFolderError", "OutputIsFileError", "PARTIAL_TAG", "STALE_AFTER_S",
           "check_output", "partial_path", "remove_stale_partials", "AtomicFile", "write_atomic",
           "atomic_folder", "fsync_path", "current_umask", "file_sha256", "TRANSACTION"]

#: The :func:`hsizoo.io.commit.commit_together` transaction of this context, or None: finished
#: outputs are staged with it (``stage(target, partial, rename)``) instead of renamed at once.
TRANSACTION: contextvars.ContextVar[Any] = contextvars.ContextVar("hsizoo_transaction",
                                                                  default=None)

# Room left free beyond the estimate: metadata, tiles, the filesystem's own reserve.
_MARGIN_BYTES = 1 << 20


class OutputError(OSError):
    """An output cannot be written where asked; the message says what was wrong and what to do."""


class OutputExistsError(OutputError, FileExistsError):
    """The target exists and overwriting was not asked."""


class OutputConflictError(OutputExistsError):
    """The target appeared while hsizoo was writing it, and overwriting was not asked."""


class OutputNotFoundError(OutputError, FileNotFoundError):
    """The folder an output should go to does not exist."""


class OutputIsFolderError(OutputError, IsADirectoryError):
    """A file output names a folder."""


class OutputIsFileError(OutputError, NotADirectoryError):
    """A folder output names a file."""


def current_umask() -> int:
    """The process umask (read without changing it for long)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_path(path: Path) -> None:
    """Flush a file (or a folder's entries) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as err:  # some filesystems cannot fsync a folder; the data is still written
        if not path.is_dir() or err.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def _probe(folder: Path) -> None:
    """Create and delete a hidden file in ``folder``: raises OSError when it cannot be written.

    A real attempt, not ``os.access``: it also catches read-only filesystems and quotas, and
    gives the true answer for root.
    """
    probe = folder / f".hsizoo-probe-{secrets.token_hex(4)}"
    os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    probe.unlink()


def check_output(path: str | os.PathLike[str], *, overwrite: bool, estimated_bytes: int = 0,
                 folder: bool = False, create_parents: bool = False,
                 option: str | None = None) -> Path:
    """Check an output location before the work that produces it starts.

    Args:
        path: The file (or, with ``folder=True``, the folder) to be written.
        overwrite: Whether an existing target may be replaced. A folder target is only checked
            for not being a file; whether its content may be replaced is the caller's decision.
        estimated_bytes: Expected size; refused when the filesystem has less room than this.
        folder: The target is a folder.
        create_parents: Missing parent folders will be created; the nearest existing one is
            checked instead.
        option: The command-line option naming this output (for the messages), e.g. "--out".

    Returns:
        The path, with ``~`` expanded.

    Raises:
        OutputError: the location cannot take the output: a read-only folder, too little free
            space, or one of its subclasses below.
        OutputNotFoundError: the folder does not exist.
        OutputIsFolderError: a file output names a folder.
        OutputIsFileError: a folder output names a file.
        OutputExistsError: the target exists and ``overwrite`` is False.
    """
    p = Path(os.path.expanduser(path))  # an unknown ~user stays as typed
    what = f"{option} {p}" if option else str(p)
    try:
        return _check_output(p, what, overwrite, estimated_bytes, folder, create_parents, option)
    except OutputError:
        raise
    except OSError as err:  # a name too long, a folder on the way that is a file, ...
        raise OutputError(f"Cannot write {what} ({err.strerror or err}); choose another output "
                          "path.") from err


def _check_output(p: Path, what: str, overwrite: bool, estimated_bytes: int, folder: bool,
                  create_parents: bool, option: str | None) -> Path:
    again = "pass --overwrite" if option else "pass overwrite=True (CLI: --overwrite)"
    if folder and (p.is_file() or (p.exists() and not p.is_dir())):
        raise OutputIsFileError(f"{what} is a file, not a folder; name a folder, or remove "
                                "the file.")
    if not folder and p.is_dir():
        raise OutputIsFolderError(f"{what} is a folder, not a file; name the file to write "
                                  "(inside that folder or elsewhere).")
    if not folder and (p.exists() or p.is_symlink()) and not overwrite:
        raise OutputExistsError(f"{what} already exists; {again} to replace it, or choose "
                                "another output path.")
    parent = p.parent
    if create_parents:
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
    if not parent.is_dir():
        raise OutputNotFoundError(f"The folder of {what} does not exist ({parent}); create "
                                  "it first, or choose another output path.")
    try:
        _probe(parent)
    except OSError as err:
        raise OutputError(f"Cannot write {what}: the folder {parent} is not writable "
                          f"({err.strerror or err}); choose a writable folder, or fix its "
                          "permissions.") from err
    free = shutil.disk_usage(parent).free
    if estimated_bytes and free < estimated_bytes + _MARGIN_BYTES:
        raise OutputError(f"Not enough free space for {what}: it needs about "
                          f"{_mb(estimated_bytes + _MARGIN_BYTES)} and {parent} has "
                          f"{_mb(free)} free; free some space or write it elsewhere.")
    return p


def _mb(n: int) -> str:
    return f"{n / 2**20:,.1f} MB"


def _conflict(tmp: Path, target: Path) -> OutputConflictError:
    """Keep a finished result whose target appeared meanwhile under ``<stem>.hsizoo-new<ext>``."""
    for i in range(1, 100):
        keep = target.with_name(f"{target.stem}.hsizoo-new{'' if i == 1 else f'-{i}'}"
                                f"{target.suffix}")
        try:
            os.link(tmp, keep)
        except FileExistsError:
            continue
        except OSError:
            break
        return OutputConflictError(
            f"{target} appeared while hsizoo was writing it (another process created it) and "
            f"was left untouched. The new result is in {keep}: compare the two and rename it, or "
            "rerun with overwrite=True (CLI: --overwrite) to replace the file.")
    return OutputConflictError(
        f"{target} appeared while hsizoo was writing it (another process created it) and was "
        "left untouched; the new result was discarded. Rerun with overwrite=True (CLI: "
        "--overwrite) to replace it, or choose another output path.")


def _swap_file(tmp: Path, target: Path, overwrite: bool) -> None:
    if overwrite:
        if target.is_dir():
            raise OutputIsFolderError(f"{target} is a folder, not a file; remove it or choose "
                                      "another output path.")
        os.replace(tmp, target)
        return
    try:
        os.link(tmp, target)  # fails if the target exists: never replaces it behind our back
    except FileExistsError:
        raise _conflict(tmp, target) from None
    except OSError:  # a filesystem without hard links: check, then rename
        if target.exists() or target.is_symlink():
            raise _conflict(tmp, target) from None
        os.replace(tmp, target)
        return
    tmp.unlink()


class AtomicFile:
    """A file written under a hidden partial name and renamed over its target when complete.

    Use as a context manager (commit on success, abort on error), or call :meth:`commit` /
    :meth:`abort`. Write to :attr:`tmp`, which exists (empty) from the start.

    Args:
        target: The final path.
        overwrite: Replace a target that exists at the swap (else :class:`OutputConflictError`
            and the result is kept beside it under ``<stem>.hsizoo-new<ext>``).
        verify: Called with the partial file after it was flushed; raises if it is not right.
        expected_size: Exact size in bytes the file must have, when known (an empty file is
            refused unless 0 is expected).
    """

    def __init__(self, target: str | os.PathLike[str], *, overwrite: bool,
                 verify: Callable[[Path], None] | None = None,
                 expected_size: int | None = None) -> None:
        self.target = Path(os.path.expanduser(target))
        self.overwrite, self.verify, self.expected_size = overwrite, verify, expected_size
        self.tmp = partial_path(self.target)
        os.close(os.open(self.tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        self._done = False

    def commit(self) -> Path:
        """Flush, check, rename over the target and flush the folder; returns the target.

        Within :func:`hsizoo.io.commit.commit_together` the checked file is staged instead, and
        renamed when the transaction ends (with the other outputs, or not at all).
        """
        if self._done:
            return self.target
        self._done = True
        staged = False
        try:
            try:
                fsync_path(self.tmp)
                size = self.tmp.stat().st_size
                if (size == 0 and self.expected_size != 0) or (
                        self.expected_size is not None and size != self.expected_size):
                    want = "" if self.expected_size is None else f" of {self.expected_size:,}"
                    raise OSError(f"{size:,} bytes{want} were written")
                if self.verify is not None:
                    self.verify(self.tmp)
                os.chmod(self.tmp, 0o666 & ~current_umask())
            except Exception as err:
                raise self._failed(err) from err
            tx = TRANSACTION.get()
            if tx is not None:
                tx.stage(self.target, self.tmp, self._rename)
                staged = True
            else:
                self._rename()
        finally:
            if not staged:
                self.tmp.unlink(missing_ok=True)
        return self.target

    def _rename(self) -> None:
        try:
            _swap_file(self.tmp, self.target, self.overwrite)
        except OutputError:
            raise
        except OSError as err:  # the rename itself failed: the target is unchanged
            raise self._failed(err) from err
        fsync_path(self.target.parent)

    def abort(self) -> None:
        """Discard the partial file."""
        self._done = True
        self.tmp.unlink(missing_ok=True)

    def _failed(self, err: BaseException) -> OutputError:
        return OutputError(
            f"Writing {self.target} failed ({err}); nothing was written there and any previous "
            "file under that name is unchanged. Check the free space and permissions of the "
            "output folder.")

    def __enter__(self) -> "AtomicFile":
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.commit()
            return
        self.abort()
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            raise self._failed(exc) from exc  # a full disk, an I/O error: say what it means


def write_atomic(target: str | os.PathLike[str], content: bytes | Callable[[Path], None], *,
                 overwrite: bool, verify: Callable[[Path], None] | None = None) -> Path:
    """Write a file atomically.

    Args:
        target: The final path.
        content: The bytes, or a function that writes the file at the path it is given.
        overwrite: Replace a target that exists at the swap.
        verify: Called with the written partial file before the swap; raises if it is wrong.

    Returns:
        The target.
    """
    with AtomicFile(target, overwrite=overwrite, verify=verify,
                    expected_size=len(content) if isinstance(content, bytes) else None) as f:
        if isinstance(content, bytes):
            with open(f.tmp, "wb") as fh:
                fh.write(content)
        else:
            content(f.tmp)
    return f.target


# Linux renameat2(RENAME_EXCHANGE) swaps two folders in one step; elsewhere two renames.
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return rc == 0


def _swap_folder(new: Path, target: Path) -> None:
    if not (target.exists() or target.is_symlink()):
        os.rename(new, target)
        return
    if _exchange(new, target):  # `new` now holds the old folder
        shutil.rmtree(new, ignore_errors=True)
        return
    old = target.with_name(f".{target.name}.hsizoo-old-{secrets.token_hex(4)}")
    os.rename(target, old)
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_folder(target: str | os.PathLike[str], *, may_replace: Callable[[Path], bool],
                  keep_other_files: bool = True) -> Iterator[Path]:
    """Write a folder as a new hidden sibling and swap it in as a whole when the block ends.

    Args:
        target: The final folder.
        may_replace: Called at the swap with an existing target folder; False refuses to
            replace it (:class:`OutputConflictError`, the new folder is discarded).
        keep_other_files: Carry over entries of an existing target that the new folder lacks.

    Yields:
        The new folder to fill.
    """
    target = Path(os.path.expanduser(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    new = partial_path(target)
    new.mkdir()  # with the user's umask
    staged = False
    try:
        yield new
        for p in new.iterdir():
            if p.is_file():
                fsync_path(p)
        if target.exists() and not target.is_dir():
            raise OutputIsFileError(f"{target} became a file while hsizoo was writing "
                         "the folder; remove it or choose another folder.")
        if target.is_dir():
            if not may_replace(target):
                raise OutputConflictError(
                    f"{target} was filled by another process while hsizoo was writing it and was "
                    "left untouched; the new model was discarded. Rerun with overwrite=True (CLI: "
                    "--overwrite) to replace it, or choose another folder.")
            if keep_other_files:
                for p in target.iterdir():
                    if not (new / p.name).exists() and ".hsizoo-" not in p.name:
                        _copy(p, new / p.name)
        fsync_path(new)
        tx = TRANSACTION.get()
        if tx is not None:  # renamed with the other outputs of the job, or not at all
            tx.stage(target, new, lambda: (_swap_folder(new, target), fsync_path(target.parent)))
            staged = True
        else:
            _swap_folder(new, target)
            fsync_path(target.parent)
    finally:
        if not staged:
            shutil.rmtree(new, ignore_errors=True)


def _copy(src: Path, dst: Path) -> None:
    if src.is_dir() and not src.is_symlink():
        shutil.copytree(src, dst, symlinks=True)
        return
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=False)
