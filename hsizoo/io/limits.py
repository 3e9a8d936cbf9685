"""Memory limits of whole-scene reads: refuse, before allocating, a read that cannot fit.

A header declaring 5000 x 5000 pixels x 200 bands asks for an 18.6 GiB float32 cube; numpy would
die half way through with a bare ``MemoryError`` (or the kernel would kill the process). The
readers estimate the bytes a whole-scene read needs and compare them with the memory available
(``MemAvailable`` of /proc/meminfo, else ``os.sysconf``, capped by a cgroup memory limit), or with
``$HSIZOO_MAX_READ_BYTES`` when it is set (bytes, or with a K/M/G/T suffix, binary units).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

#: Environment variable overriding the memory a whole-scene read may use.
ENV_MAX_READ = "HSIZOO_MAX_READ_BYTES"
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


class SceneTooLargeError(MemoryError, ValueError):
    """A whole-scene read that would need more memory than is available.

    Both a MemoryError (what it is) and a ValueError (the scene the user asked for cannot be read
    this way), so that callers reporting bad input report it with its message.
    """


def format_bytes(n: float) -> str:
    """``19_999_999_999`` -> ``"18.6 GiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def _parse_bytes(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", text, re.IGNORECASE)
    if not m:
        raise ValueError(
            f"${ENV_MAX_READ}={text!r} is not a number of bytes; set it to e.g. 8000000000 or 8G, "
            "or unset it to use the memory available.")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def _cgroup_room() -> int | None:
    """Bytes left under this process's cgroup memory limit (v2, then v1), or None."""
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 2**60:
            return max(int(limit) - usage, 0)
    return None


def available_memory() -> tuple[int | None, str]:
    """(bytes a read may use, where that figure comes from); (None, ...) when unknown."""
    env = os.environ.get(ENV_MAX_READ, "").strip()
    if env:
        return _parse_bytes(env), f"${ENV_MAX_READ}"
    avail = None
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, OSError, ValueError):
            return None, "unknown"
    room = _cgroup_room()
    if room is not None and room < avail:
        return room, "the memory limit of this process's cgroup"
    return avail, "memory available"


def check_read_size(nbytes: int, path: Path | str, shape: tuple[int, ...], stored: str, *,
                    windowed: bool = True) -> None:
    """Refuse a whole-scene read of ``nbytes`` that does not fit in the memory available.

    Args:
        nbytes: Estimated peak bytes of the read (the float32 cube and its temporaries).
        path: The file, for the message.
        shape: (H, W, B) of the cube.
        stored: How the cube is stored / read, for the message (e.g. "float32").
        windowed: Whether the format can be read window by window (rasters: yes; .mat: no).

    Raises:
        SceneTooLargeError: the read does not fit.
    """
    avail, source = available_memory()
    if avail is None or nbytes <= avail:
        return
    h, w, b = (int(n) for n in shape)
    name = Path(path).name
    if windowed:
        todo = (f"Read it window by window instead: hsizoo.io.iter_windows({name!r}, "
                "window_size=512) (hsizoo predict streams windows by itself), or crop a smaller "
                "area (e.g. gdal_translate -srcwin), or use a machine with more memory.")
    else:
        todo = ("A .mat file is read whole: save the cube as a GeoTIFF or ENVI file and read it "
                "window by window with hsizoo.io.iter_windows, crop a smaller area, or use a "
                "machine with more memory.")
    raise SceneTooLargeError(
        f"Reading all of {path} needs about {format_bytes(nbytes)} ({h} x {w} pixels x {b} bands, "
        f"{stored}) but only {format_bytes(avail)} can be used ({source}). {todo} "
        f"${ENV_MAX_READ} sets the limit in bytes.")
