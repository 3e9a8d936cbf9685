"""Argument types of the command line, in one place: numbers, seeds and wavelength lists.

Each is an argparse ``type=`` function, so a bad value is refused while the arguments are parsed,
before any file is read or any model built, with argparse's usage error (exit status 2), e.g.
``hsizoo finetune: error: argument --steps: '-1' is not a whole number >= 0``.
"""
from __future__ import annotations

import argparse
import math
import os
import re
from pathlib import Path
from typing import Callable

__all__ = ["positive_int", "non_negative_int", "positive_float", "non_negative_float", "seed",
           "band_count", "path", "open_fraction", "half_open_fraction", "shots", "WavelengthList", "wavelength_list"]

#: Largest whole number of any option (numpy and torch take it); the largest seed.
MAX_INT = MAX_SEED = 2**63 - 1
#: Most bands a scene may have (--bands of hsizoo info).
MAX_BANDS = 10_000
# Text longer than this is never a number someone typed.
_MAX_NUMBER_CHARS = 100


def _parse_int(text: str) -> int | None:
    text = text.strip()
    if len(text) > _MAX_NUMBER_CHARS or not re.fullmatch(r"[+-]?\d+", text):
        return None
    return int(text)


def _parse_float(text: str) -> float | None:
    text = text.strip()
    if len(text) > _MAX_NUMBER_CHARS:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _int_type(low: int, name: str, hint: str = "", high: int | None = None
              ) -> Callable[[str], int]:
    def convert(text: str) -> int:
        value = _parse_int(text)
        if value is None or value < low or value > (MAX_INT if high is None else high):
            bound = f"between {low} and {high:,}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"{_show(text)} is not a whole number {bound}{hint}")
        return value

    convert.__name__ = name
    return convert


def _float_type(name: str, low: float, low_ok: bool, high: float | None = None,
                high_ok: bool = True) -> Callable[[str], float]:
    def convert(text: str) -> float:
        value = _parse_float(text)
        ok = value is not None and (value >= low if low_ok else value > low) and (
            high is None or (value <= high if high_ok else value < high))
        if not ok:
            if high is None:
                bound = f"{'>=' if low_ok else '>'} {low:g}"
            else:
                bound = (f"in {'[' if low_ok else '('}{low:g}, {high:g}"
                         f"{']' if high_ok else ')'}")
            raise argparse.ArgumentTypeError(f"{_show(text)} is not a finite number {bound}")
        return float(value)  # type: ignore[arg-type]

    convert.__name__ = name
    return convert


def _show(text: str) -> str:
    """The value as typed, shortened when long (for the message)."""
    return repr(text if len(text) <= 40 else text[:37] + "...")


positive_int = _int_type(1, "positive_int")
non_negative_int = _int_type(0, "non_negative_int")
seed = _int_type(0, "seed", high=MAX_SEED)
band_count = _int_type(1, "band_count", high=MAX_BANDS)
positive_float = _float_type("positive_float", 0.0, low_ok=False)
non_negative_float = _float_type("non_negative_float", 0.0, low_ok=True)
#: A fraction strictly between 0 and 1 (a mask ratio).
open_fraction = _float_type("open_fraction", 0.0, low_ok=False, high=1.0, high_ok=False)
#: A fraction in [0, 1).
half_open_fraction = _float_type("half_open_fraction", 0.0, low_ok=True, high=1.0, high_ok=False)
#: --shots: 0 or -1 used to mean "all labels"; the message says what to use instead.
shots = _int_type(1, "shots", hint=" of labelled pixels per class; use --all-labels to train on "
                  "every labelled pixel")


def path(text: str) -> str:
    """A file or folder path: ``~`` and ``~user`` expanded here, so that an unknown user's home
    is one clear error instead of a failure deep inside a reader."""
    if not text.startswith("~"):
        return text
    expanded = os.path.expanduser(text)
    if expanded == text:
        user = text[1:].split("/", 1)[0]
        raise argparse.ArgumentTypeError(
            f"{_show(text)}: {'~' + user if user else '~'} cannot be expanded (no such user's home "
            "folder on this machine); give the full path")
    return expanded


class WavelengthList(list):
    """Band centres in nm from ``--wavelengths``; ``source`` is the file they came from, if any."""

    source: Path | None = None


_LIST_CHARS = re.compile(r"[\s,;]")


def wavelength_list(text: str) -> WavelengthList:
    """``--wavelengths``: a comma (or space) separated list of band centres in nm, or a file
    holding one.

    Text whose every item is a number is a list, and never touches the filesystem (a real
    sensor's list is longer than a file name may be); otherwise it names a file, or, if no such
    file exists and it holds commas or spaces, it is a list with a bad value (named).
    """
    if not text.strip():
        raise argparse.ArgumentTypeError("the value is empty; give band centres in nm "
                                         "('400.5,410.2,...') or a file holding them")
    tokens = _tokens(text)
    if tokens and all(_parse_float(t) is not None for t in tokens):
        return _values(tokens, None)
    path = Path(os.path.expanduser(text))
    try:
        is_file, is_dir = path.is_file(), path.is_dir()
    except (OSError, ValueError):  # e.g. longer than a file name may be: not a file
        is_file = is_dir = False
    if not is_file:
        if _LIST_CHARS.search(text) and not is_dir:
            return _values(tokens, None)
        why = "is a folder" if is_dir else "does not exist"
        raise argparse.ArgumentTypeError(
            f"{_show(text)} is neither a list of band centres in nm (e.g. '400.5,410.2,...') "
            f"nor a file holding one: the file {why}")
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise argparse.ArgumentTypeError(
            f"cannot read the band centres from {_show(text)} ({err}); give a text file of "
            "numbers in nm, or the list itself ('400.5,410.2,...')") from None
    return _values(_tokens(raw), path)


def _tokens(text: str) -> list[str]:
    return [t for t in _LIST_CHARS.split(text.strip()) if t]


def _values(tokens: list[str], source: Path | None) -> WavelengthList:
    """The band centres of a list's items, each a positive finite number."""
    if not tokens:
        where = f"the file {source}" if source is not None else "the list"
        raise argparse.ArgumentTypeError(f"{where} holds no band centres; give them in nm, "
                                         "e.g. '400.5,410.2,...'")
    values = WavelengthList()
    for i, token in enumerate(tokens, 1):
        value = _parse_float(token)
        if value is None or value <= 0:
            where = f" in {source}" if source is not None else ""
            raise argparse.ArgumentTypeError(
                f"value {i}{where}, {_show(token)}, is not a positive band centre in nm; give "
                "numbers separated by commas, e.g. '400.5,410.2,...'")
        values.append(value)
    values.source = source
    return values
