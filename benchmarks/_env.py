"""Environment record stored beside every benchmark result (torch, CPU, threads, commit)."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def environment() -> dict:
    """What the numbers were measured on."""
    try:
        # $HSIZOO_COMMIT names the commit of a copy without git history (a remote machine).
        commit = os.environ.get("HSIZOO_COMMIT") or subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, cwd=RESULTS.parent, check=False).stdout.strip()
    except OSError:
        commit = ""
    sys.path.insert(0, str(RESULTS.parents[1]))
    from hsizoo.runtime.system import cpu_name

    cpu = cpu_name()
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "commit": commit,
    }


def save(name: str, payload: dict, markdown: str, env: dict | None = None) -> None:
    """Write results/<name>.json (with the environment: this one, or ``env`` when a stored
    run is rewritten) and results/<name>.md."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {**payload, "environment": env if env is not None else environment()}
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown.rstrip() + "\n")


def sync(device: str) -> None:
    """Wait for the device's queued work (a no-op on a CPU), so that timings cover it."""
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
