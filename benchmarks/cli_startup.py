"""Start-up time of the command line: ``hsizoo --help`` / ``--version`` against ``import torch, timm``.

Prints the median wall time of each (fresh interpreters, run from this checkout) and the ratio
against the baseline of importing torch and timm, which is what ``hsizoo --help`` cost when
``import hsizoo`` imported the models (5.3 s measured in issue 22). Target: ``--help`` under 1 s.

    python benchmarks/cli_startup.py [--repeat 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _time(args: list[str], repeat: int) -> float:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO),
                                                                    os.environ.get("PYTHONPATH")]))}
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, *args], check=True, env=env, cwd=REPO,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=5)
    a = p.parse_args()
    base = _time(["-c", "import torch, timm"], a.repeat)
    rows = [("import torch, timm (baseline)", base),
            ("python -m hsizoo --help", _time(["-m", "hsizoo", "--help"], a.repeat)),
            ("python -m hsizoo --version", _time(["-m", "hsizoo", "--version"], a.repeat)),
            ("python -c 'import hsizoo'", _time(["-c", "import hsizoo"], a.repeat))]
    print(f"median of {a.repeat} fresh interpreters; Python {sys.version.split()[0]}")
    print(f"| command | seconds | vs baseline |\n|---|---:|---:|")
    for name, t in rows:
        print(f"| `{name}` | {t:.2f} | {t / base:.2f}x |")


if __name__ == "__main__":
    main()
