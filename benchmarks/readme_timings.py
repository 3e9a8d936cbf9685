"""The times README quotes, measured as a new user meets them: ``hsizoo demo`` in a fresh
process, and README's test command (``python -m pytest``), each timed on this machine.

    python benchmarks/readme_timings.py            # demo only (about 1-2 minutes on 2 cores)
    python benchmarks/readme_timings.py --tests    # also the default test run (several minutes)

Writes results/readme_timings.{json,md} with the machine (CPU, cores, torch threads, commit).
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _env import RESULTS, environment, save  # noqa: E402

REPO = RESULTS.parents[1]


def _timed(cmd: list[str], cwd: Path) -> tuple[float, str]:
    t0 = time.perf_counter()
    run = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    secs = time.perf_counter() - t0
    if run.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({run.returncode}):\n{run.stdout[-2000:]}"
                         f"\n{run.stderr[-2000:]}")
    return secs, run.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tests", action="store_true", help="also time README's test command")
    args = ap.parse_args()
    payload: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        secs, out = _timed([sys.executable, "-m", "hsizoo", "demo", "--out-dir", tmp,
                            "--quiet"], Path(tmp))
    oa = re.search(r"OA ([\d.]+) %", out)
    payload["demo"] = {"seconds": round(secs, 1), "oa": float(oa.group(1)) if oa else None,
                       "command": "hsizoo demo"}
    print(f"hsizoo demo: {secs:.1f} s (OA {payload['demo']['oa']} %)")
    if args.tests:
        secs, out = _timed([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], REPO)
        last = out.strip().splitlines()[-1]
        payload["tests"] = {"seconds": round(secs, 1), "summary": last,
                            "command": "python -m pytest"}
        print(f"python -m pytest: {secs:.1f} s ({last})")
    env = environment()
    md = ["| what | command | seconds | notes |", "|---|---|---|---|",
          f"| demo | `hsizoo demo` | {payload['demo']['seconds']:.0f} | "
          f"OA {payload['demo']['oa']} % |"]
    if "tests" in payload:
        md.append(f"| tests | `python -m pytest` | {payload['tests']['seconds']:.0f} | "
                  f"{payload['tests']['summary'].strip('= ')} |")
    md.append(f"\n{env['cpu']}, {env['cpu_count']} cores, torch {env['torch']}, commit "
              f"{env['commit']}.")
    save("readme_timings", payload, "\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
