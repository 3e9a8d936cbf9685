"""Progress bars and notes that respect ``-q`` and do not flood logs.

Every progress bar of hsizoo comes from :func:`progress_bar`. On a terminal it is an ordinary
tqdm bar. When stderr is not a terminal (a log file, a batch job, a pipe), tqdm's carriage-return
redraws would pile up as kilobytes of text, so the bar redraws at most every
:data:`OFF_TTY_INTERVAL` seconds there: a long job still says where it is, a short one writes a
line or two. ``hsizoo -q`` (or ``HSIZOO_QUIET=1``) turns bars and notes off: only results and
errors are printed.
"""
from __future__ import annotations

import os
import sys
from typing import Any

__all__ = ["OFF_TTY_INTERVAL", "is_quiet", "note", "progress_bar", "set_quiet"]

#: Seconds between redraws of a bar whose stderr is not a terminal.
OFF_TTY_INTERVAL = 60.0

_quiet = False


def set_quiet(quiet: bool) -> None:
    """Turn progress bars and notes off (``hsizoo -q``) or back on."""
    global _quiet
    _quiet = bool(quiet)


def is_quiet() -> bool:
    """Whether bars and notes are off (:func:`set_quiet` or ``HSIZOO_QUIET=1``)."""
    return _quiet or os.environ.get("HSIZOO_QUIET", "").strip().lower() in ("1", "true", "yes")


def _on_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


def progress_bar(*args: Any, disable: bool = False, **kwargs: Any) -> Any:
    """A tqdm bar (same arguments) that is off when quiet and slow to redraw off a terminal.

    Args:
        *args: Passed to ``tqdm``.
        disable: Off regardless (the caller's ``progress=False``).
        **kwargs: Passed to ``tqdm``; ``mininterval`` is raised to :data:`OFF_TTY_INTERVAL`
            when stderr is not a terminal.

    Returns:
        A ``tqdm`` instance (a disabled one still counts, so callers need no branches).
    """
    from tqdm.auto import tqdm

    disable = disable or is_quiet()
    if not disable and not _on_terminal():
        kwargs["mininterval"] = max(float(kwargs.get("mininterval", 0.1)), OFF_TTY_INTERVAL)
        kwargs.setdefault("maxinterval", OFF_TTY_INTERVAL * 10)
        kwargs["dynamic_ncols"] = False  # no terminal to measure
        return _log_bar_class(tqdm)(*args, disable=disable, **kwargs)
    return tqdm(*args, disable=disable, **kwargs)


def _log_bar_class(tqdm: type) -> type:
    """tqdm whose postfix and description updates wait for the next timed redraw: tqdm redraws
    on every ``set_postfix`` by default, which would defeat ``mininterval`` in a log."""

    class LogBar(tqdm):  # type: ignore[misc, valid-type]
        def set_postfix(self, ordered_dict: Any = None, refresh: bool = True,
                        **kwargs: Any) -> None:
            super().set_postfix(ordered_dict, refresh=False, **kwargs)

        def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
            super().set_postfix_str(s, refresh=False)

        def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
            super().set_description(desc, refresh=False)

    return LogBar


def note(message: str) -> None:
    """Print a progress note on stderr, unless quiet."""
    if not is_quiet():
        print(message, file=sys.stderr, flush=True)
