"""Old code against new, back to back: ``predict_target.py`` run alternately on two trees.

    python benchmarks/predict_target_ab.py --old 519e30a            # 3 rounds, 2 threads
    python benchmarks/predict_target_ab.py --old 519e30a --rounds 5 --threads 1

Each round runs ``benchmarks/predict_target.py --no-record`` in a fresh process once with the
package of commit ``--old`` (extracted with ``git archive`` into a temporary folder) and once
with this working tree, alternating which goes first, and prints every run's JSON line, then the
medians and the old/new ratios. ``predict_target.py`` alone stays the measurement of record; this
script only makes a before/after comparison on one machine in one sitting easy.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(tree: Path, threads: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    # The extracted old tree is not beside ../shared, where the package finds the scene layouts.
    data = ROOT.parent / "shared" / "data" / "hsi"
    if "HSIZOO_DATA_DIR" not in env and data.is_dir():
        env["HSIZOO_DATA_DIR"] = str(data)
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "predict_target.py"),
                          "--no-record"], env=env, cwd=ROOT, check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old", required=True, help="git revision of the old code (e.g. 519e30a)")
    ap.add_argument("--rounds", type=int, default=3, help="runs of each tree (default 3)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = ap.parse_args()
    runs: dict[str, list[dict]] = {"old": [], "new": []}
    with tempfile.TemporaryDirectory(prefix="hsizoo-old-") as tmp:
        archive = Path(tmp) / "old.tar"
        subprocess.run(["git", "archive", "-o", str(archive), args.old, "hsizoo"], cwd=ROOT,
                       check=True)
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        trees = {"old": Path(tmp), "new": ROOT}
        for r in range(args.rounds):
            for name in ("old", "new") if r % 2 == 0 else ("new", "old"):
                rec = _run(trees[name], args.threads)
                runs[name].append(rec)
                print(json.dumps(dict(tree=name, **rec)), flush=True)
    med = {name: {k: statistics.median(rec[k] for rec in recs)
                  for k in ("predict_610x340x103_s", "shared_px_s", "shared_over_naive")}
           for name, recs in runs.items()}
    summary = dict(old=args.old, rounds=args.rounds, threads=args.threads, median=med,
                   whole_scene_old_over_new=round(med["old"]["predict_610x340x103_s"]
                                                  / med["new"]["predict_610x340x103_s"], 3),
                   shared_new_over_old=round(med["new"]["shared_px_s"]
                                             / med["old"]["shared_px_s"], 3),
                   load_average=os.getloadavg())
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
