"""Several outputs of one job committed together, or not at all; and outputs kept off its inputs.

A class map and its confidence map (and a quicklook, a saved model) describe one result: a disk
that fills up while the second is written must not leave the new map beside the old confidence.
Inside :func:`commit_together` every atomic writer of :mod:`hsizoo.io.atomic` (files and model
folders) writes and checks its output under its hidden partial name as usual, but leaves the
final rename to the transaction. When the block ends without an error, the outputs are renamed
into place one after the other; if one rename fails, those already renamed are put back as they
were (the previous file or folder, or nothing). When the block fails (a full disk, Ctrl-C), every
partial is removed and no target is touched::

    with commit_together():
        write_class_map("map.tif", ...)
        write_confidence_map("conf.tif", ...)    # ENOSPC here: map.tif is unchanged too

Transactions nest: an inner ``commit_together()`` joins the one already running.

:func:`refuse_inputs_as_outputs` refuses an output location that names an input of the same job
(the scene, its labels, a model folder), whatever the spelling (``./x/../scene.tif``, a symbolic
link, a hard link), before any work.
"""
from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from hsizoo.io.atomic import TRANSACTION, OutputError, _swap_folder, partial_path

__all__ = ["Transaction", "commit_together", "refuse_inputs_as_outputs"]


@dataclass
class _Staged:
    target: Path
    partial: Path
    rename: Callable[[], object]


class Transaction:
    """The outputs staged by the atomic writers within one :func:`commit_together` block."""

    def __init__(self) -> None:
        self.staged: list[_Staged] = []

    def stage(self, target: Path, partial: Path, rename: Callable[[], object]) -> None:
        """Take over a finished, checked partial file or folder; ``rename()`` moves it into place
        (and raises, leaving the target unchanged, when it cannot)."""
        self.staged.append(_Staged(Path(target), Path(partial), rename))

    @property
    def targets(self) -> list[Path]:
        return [s.target for s in self.staged]

    def commit(self) -> None:
        """Rename every staged output into place; on any failure put back those already renamed.

        An output inside a staged folder (a map written into the folder of a saved model) is
        moved into the new folder first, and arrives with it.
        """
        renamed: list[tuple[_Staged, Path | None]] = []
        current: Path | None = None
        try:
            self._absorb()
            for s in self.staged:
                current = s.target
                backup = _backup(s.target)
                try:
                    s.rename()
                except BaseException:
                    _remove(backup)
                    raise
                renamed.append((s, backup))
        except BaseException as err:
            failed = _restore(renamed)
            targets = self.targets
            self.abort()
            if isinstance(err, OSError) and (failed or not isinstance(err, OutputError)):
                raise OutputError(_message(str(err), targets, failed)) from err
            _note_others(err, [t for t in targets if t != current])
            raise
        for _, backup in renamed:
            _remove(backup)
        self.staged.clear()

    def _absorb(self) -> None:
        """Move outputs that lie inside a staged folder's target into that new folder."""
        def real(p: Path) -> Path:
            return Path(os.path.realpath(p))

        folders = [s for s in self.staged if s.partial.is_dir()]
        for s in list(self.staged):
            home = next((f for f in folders
                         if f is not s and real(f.target) in real(s.target).parents), None)
            if home is None:
                continue
            dest = home.partial / real(s.target).relative_to(real(home.target))
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest)
            os.replace(s.partial, dest)
            self.staged.remove(s)

    def abort(self) -> None:
        """Remove every staged partial; no target is touched."""
        for s in self.staged:
            _remove(s.partial)
        self.staged.clear()


@contextlib.contextmanager
def commit_together() -> Iterator[Transaction]:
    """Commit every output written by hsizoo's atomic writers in the block together, or none.

    Yields:
        The transaction (the one already running, when nested).

    Raises:
        OutputError: a rename failed (the outputs already renamed were put back), or an
            ``OSError`` in the block (a full disk), with what it means for the outputs.
    """
    running = TRANSACTION.get()
    if running is not None:
        yield running
        return
    tx = Transaction()
    token = TRANSACTION.set(tx)
    try:
        try:
            yield tx
        finally:
            TRANSACTION.reset(token)
    except BaseException as err:
        targets = tx.targets
        tx.abort()
        if targets and isinstance(err, OSError) and not isinstance(err, OutputError):
            raise OutputError(_message(str(err), targets, [])) from err
        _note_others(err, targets)
        raise
    tx.commit()


def _message(why: str, targets: list[Path], failed: list[Path]) -> str:
    names = ", ".join(str(t) for t in targets) or "the outputs"
    if failed:
        return (f"Writing the outputs failed ({why}), and {', '.join(map(str, failed))} could "
                "not be put back as it was: check it before using it. Check the free space "
                "and permissions of the output folder, then run again.")
    return (f"Writing the outputs failed ({why}); none of them was written: {names} and any "
            "other output already there are unchanged. Check the free space and permissions "
            "of the output folder, then run again.")


def _note_others(err: BaseException, others: list[Path]) -> None:
    """Add to an output error that the other outputs of the job were not written either."""
    if others and isinstance(err, OutputError) and len(err.args) == 1 \
            and isinstance(err.args[0], str):
        err.args = (f"{err.args[0]} The other outputs ({', '.join(map(str, others))}) were not "
                    "written either: hsizoo writes the outputs of one job together or not at "
                    "all.",)


def _backup(target: Path) -> Path | None:
    """A hidden hard-linked copy of an existing target (file, link or folder), or None."""
    if not (target.exists() or target.is_symlink()):
        return None
    keep = partial_path(target)
    if target.is_dir() and not target.is_symlink():
        shutil.copytree(target, keep, symlinks=True, copy_function=_link_or_copy)
    else:
        _link_or_copy(target, keep)
    return keep


def _link_or_copy(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=False)


def _restore(renamed: list[tuple[_Staged, Path | None]]) -> list[Path]:
    """Put back what the renamed outputs replaced, last first; returns the targets that failed."""
    failed = []
    for s, backup in reversed(renamed):
        try:
            if backup is None:
                _remove(s.target, strict=True)
            elif backup.is_dir() and not backup.is_symlink():
                _swap_folder(backup, s.target)
            else:
                os.replace(backup, s.target)
        except OSError:
            failed.append(s.target)
    return failed


def _remove(path: Path | None, strict: bool = False) -> None:
    if path is None:
        return
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        if strict:
            raise


# ----------------------------------------------------------------------- inputs are not outputs


def _key(path: Path) -> tuple[str, tuple[int, int] | None]:
    real = Path(os.path.realpath(os.path.expanduser(path)))
    try:
        st = real.stat()
        ident = (st.st_dev, st.st_ino)
    except OSError:
        ident = None
    return str(real), ident


def _same(a: Path, b: Path) -> bool:
    (pa, ia), (pb, ib) = _key(a), _key(b)
    return pa == pb or (ia is not None and ia == ib)


def refuse_inputs_as_outputs(outputs: Iterable[tuple[str, object, Sequence[str]]],
                             inputs: Iterable[tuple[str, object]]) -> None:
    """Refuse any output location that names an input, before any work.

    Args:
        outputs: ``(option, path, names)`` of each output (None paths are skipped); ``names``
            are the files a folder output (a saved model) writes inside it, empty for a file.
        inputs: ``(what, path)`` of each input file or folder, ``what`` as the user named it
            (``"the scene (SCENE)"``, ``"--eval-labels"``); None paths are skipped. A folder
            input counts with every file in it.

    Raises:
        OutputError: an output names an input; the message names both.
    """
    entries: list[tuple[str, Path]] = []
    for what, p in inputs:
        if p is None or str(p) == "":
            continue
        path = Path(os.path.expanduser(str(p)))
        entries.append((what, path))
        with contextlib.suppress(OSError):
            if path.is_dir():
                entries += [(what, f) for f in path.iterdir() if f.is_file()]
    for option, out, names in outputs:
        if out is None or str(out) == "":
            continue
        out = Path(os.path.expanduser(str(out)))
        written = [out] + [out / n for n in names]
        for what, inp in entries:
            if any(_same(w, inp) for w in written):
                raise OutputError(
                    f"{option} and {what} both name {_key(inp)[0]}: hsizoo never writes over an "
                    f"input (it would be replaced by the output). Choose another path for "
                    f"{option}.")
