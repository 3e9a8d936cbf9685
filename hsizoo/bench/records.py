"""Small helpers shared by the benchmarks (:mod:`hsizoo.bench.runner`, :mod:`hsizoo.bench.report`,
:mod:`hsizoo.bench.probe_run` and the scripts in benchmarks/): where a result file lives, how it
is written, and what it records besides the scores (peak memory, the environment).

Number lists ("0-9", "1,5,10") and name lists of the command lines are parsed here too.
"""
from __future__ import annotations

import os
import re
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from hsizoo.io.atomic import write_atomic

__all__ = ["PeakMemory", "default_environment", "parse_int_list", "result_path", "scene_slug"]


def parse_int_list(text: str | Iterable[str] | Iterable[int]) -> list[int]:
    """Parse "0-9", "1,5,10", "1 5 10" or a list of such items into sorted unique ints.

    Args:
        text: The text (or items of an ``nargs="+"`` option).

    Returns:
        The integers, ascending.

    Raises:
        ValueError: an item that is neither an integer nor a range "a-b" with a <= b.
    """
    items = [text] if isinstance(text, (str, int)) else list(text)
    out: set[int] = set()
    for item in items:
        for part in str(item).replace(",", " ").split():
            m = re.fullmatch(r"(\d+)-(\d+)", part)
            if m:
                a, b = int(m.group(1)), int(m.group(2))
                if a > b:
                    raise ValueError(f"Bad range {part!r}: write low-high, e.g. 0-9.")
                out.update(range(a, b + 1))
            elif re.fullmatch(r"\d+", part):
                out.add(int(part))
            else:
                raise ValueError(f"Bad number list item {part!r}: use integers and ranges, "
                                 "e.g. '1,5,10' or '0-9'.")
    if not out:
        raise ValueError("Empty number list; give at least one value, e.g. 0-9.")
    return sorted(out)


def _split_names(items: Iterable[str] | str) -> list[str]:
    items = [items] if isinstance(items, str) else list(items)
    out: list[str] = []
    for item in items:
        out += [p for p in item.replace(",", " ").split() if p and p not in out]
    return out


def scene_slug(spec: str) -> str:
    """File-system name of a scene spec ("simulated:rosis:pavia_university:0" ->
    "simulated_rosis_pavia_university_0")."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", spec).strip("_") or "scene"


def result_path(out_dir: str | Path, scene: str, method: str, shots: int, seed: int,
                train_seed: int | None = None) -> Path:
    """Where the JSON of one run lives: ``shots<k>_seed<s>.json`` when the run trains with its
    split's seed (the harness's default), ``shots<k>_seed<s>_train<t>.json`` for another
    training seed ``t`` on the same split."""
    stem = f"shots{shots}_seed{seed}"
    if train_seed is not None and int(train_seed) != int(seed):
        stem += f"_train{int(train_seed)}"
    return Path(out_dir) / scene_slug(scene) / method / f"{stem}.json"


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _maxrss_mb() -> float | None:
    try:
        import resource  # POSIX only
    except ImportError:
        return None
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return r / (1024.0 * 1024.0) if sys.platform == "darwin" else r / 1024.0


class PeakMemory:
    """Peak resident set size of this process during a ``with`` block, sampled by a thread.

    Args:
        interval: Seconds between samples (spikes shorter than this can be missed).
    """

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.start: int | None = None
        self.peak: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            v = _rss_bytes()
            if v is not None and (self.peak is None or v > self.peak):
                self.peak = v

    def __enter__(self) -> "PeakMemory":
        self.start = self.peak = _rss_bytes()
        if self.start is not None:
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        v = _rss_bytes()
        if v is not None and self.peak is not None:
            self.peak = max(self.peak, v)

    def as_dict(self) -> dict[str, Any]:
        """Peak, start and delta in MiB, the process high-water mark, and how they were got."""
        mb = 1024.0 * 1024.0
        out: dict[str, Any] = {"process_maxrss_mb": _maxrss_mb()}
        if self.start is not None and self.peak is not None:
            out.update(peak_rss_mb=self.peak / mb, start_rss_mb=self.start / mb,
                       peak_rss_delta_mb=(self.peak - self.start) / mb,
                       how=f"RSS sampled every {1000 * self.interval:.0f} ms from /proc/self/statm "
                       "during the run; process_maxrss_mb is the whole process's getrusage peak")
        else:
            out["how"] = ("getrusage peak of the whole process only (/proc/self/statm is not "
                          "available here)")
        return out


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    # The one atomic writer (hidden partial file, fsync, rename); the run's folder is made here.
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, write, overwrite=True)


def default_environment() -> dict[str, Any]:
    """benchmarks/_env.py's environment() when running from a source checkout, else the same
    fields gathered here (torch, python, CPU, threads)."""
    import importlib.util
    import platform

    import torch

    env_py = Path(__file__).resolve().parents[2] / "benchmarks" / "_env.py"
    if env_py.is_file():
        try:
            spec = importlib.util.spec_from_file_location("_hsizoo_bench_env", env_py)
            assert spec is not None and spec.loader is not None
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            return dict(mod.environment())
        except Exception:  # noqa: BLE001 - the record is informative; fall back rather than fail
            pass
    return {"torch": torch.__version__, "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "commit": ""}


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return str(obj)
