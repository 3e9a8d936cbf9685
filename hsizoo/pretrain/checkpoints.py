"""The run directory: pickle-free checkpoints, the step log and its loss-curve plot.

``ckpt-<step>.safetensors`` holds the model, the optimiser's tensors and the torch RNG state; the
manifest ``checkpoint.json`` the step, config, optimiser scalars, the learning-rate scheduler's
state (timm's, a small dict), wall time and the sha256 of the tensors file. Each is written to a
temporary file in the run directory and renamed, the manifest last, so that it always points to a
complete tensors file. ``log.jsonl`` holds one JSON object
per logged step.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch

from hsizoo.io.atomic import file_sha256, write_atomic
from hsizoo.pretrain.config import PretrainConfig
from hsizoo.method.objective import MaskedS2Former

if TYPE_CHECKING:
    from timm.scheduler.scheduler import Scheduler

MANIFEST = "checkpoint.json"
LOG_NAME = "log.jsonl"
PROBE_LOG = "probe.jsonl"


def _atomic(path: Path, write: Callable[[Path], None] | bytes) -> None:
    """Write ``path`` (a writer function, or the bytes) through hsizoo's one atomic writer
    (hidden partial file, fsync, size check, rename)."""
    write_atomic(path, write, overwrite=True)


def save_checkpoint(run_dir: Path, step: int, model: MaskedS2Former, optimizer: torch.optim.Optimizer,
                    scheduler: "Scheduler", cfg: PretrainConfig, state: dict[str, Any]) -> Path:
    """Write ``ckpt-<step>.safetensors`` and then the manifest; drop older tensors files.

    Args:
        run_dir: Folder of the run.
        step: Optimiser steps done.
        model: The objective (encoder and decoders).
        optimizer: Its optimiser; tensors go to the safetensors file, scalars to the manifest.
        scheduler: The learning-rate scheduler; its state goes to the manifest as JSON.
        cfg: The recipe.
        state: Further manifest entries (wall time, hardware, ...).

    Returns:
        The manifest's path.
    """
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    for k, v in model.state_dict().items():
        tensors[f"model.{k}"] = v.detach().cpu().contiguous()
    opt = optimizer.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for pid, st in opt["state"].items():
        for name, v in st.items():
            if torch.is_tensor(v):
                tensors[f"optim.{pid}.{name}"] = v.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[name] = v
    tensors["rng.torch"] = torch.get_rng_state()
    name = f"ckpt-{step:08d}.safetensors"
    _atomic(run_dir / name, lambda p: save_file(tensors, str(p), metadata={"format": "pt"}))
    manifest = dict(
        format="hsizoo-pretrain-checkpoint", version=1, step=step, tensors=name,
        sha256=file_sha256(run_dir / name), config=cfg.to_json(),
        optimizer=dict(param_groups=opt["param_groups"], scalars=scalars),
        scheduler=scheduler.state_dict(), **state)
    text = json.dumps(manifest, indent=1, default=float)
    _atomic(run_dir / MANIFEST, text.encode())
    for old in run_dir.glob("ckpt-*.safetensors"):
        if old.name != name:
            old.unlink(missing_ok=True)
    return run_dir / MANIFEST


def load_checkpoint(run_dir: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read a run directory's manifest and its verified tensors.

    Args:
        run_dir: Folder of a pretraining run.

    Returns:
        (manifest, tensors) with tensors keyed ``model.*``, ``optim.<id>.*`` and ``rng.torch``.

    Raises:
        FileNotFoundError: no checkpoint in the folder.
        ValueError: the tensors file does not match the manifest's sha256.
    """
    from safetensors.torch import load_file

    run_dir = Path(run_dir)
    mpath = run_dir / MANIFEST
    if not mpath.is_file():
        raise FileNotFoundError(f"No pretraining checkpoint in {run_dir} (no {MANIFEST}). Start "
                                "a run there first, or point at the run directory of one.")
    manifest = json.loads(mpath.read_text())
    tpath = run_dir / manifest["tensors"]
    if not tpath.is_file() or file_sha256(tpath) != manifest["sha256"]:
        raise ValueError(f"Checkpoint {tpath} is missing or does not match the sha256 in {mpath}; "
                         "the run directory was modified by hand.")
    return manifest, load_file(str(tpath))


def _restore(manifest: dict[str, Any], tensors: dict[str, torch.Tensor], model: MaskedS2Former,
             optimizer: torch.optim.Optimizer, scheduler: "Scheduler") -> None:
    sd = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    model.load_state_dict(sd, strict=True)
    state: dict[int, dict[str, Any]] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, pid, name = k.split(".", 2)
            state.setdefault(int(pid), {})[name] = v
    for pid, sc in manifest["optimizer"]["scalars"].items():
        state.setdefault(int(pid), {}).update(sc)
    groups = manifest["optimizer"]["param_groups"]
    have = [len(g["params"]) for g in optimizer.param_groups]
    if [len(g["params"]) for g in groups] != have:
        # Runs with weight_decay 0 written before timm's parameter groups had two groups.
        raise ValueError(
            f"The optimiser of this checkpoint has parameter groups of sizes "
            f"{[len(g['params']) for g in groups]}, this version of hsizoo builds {have}: it was "
            "written by an older hsizoo whose optimiser grouping differs. Resume it with that "
            "version, or start a new run_dir.")
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    # Checkpoints written before the scheduler's state was stored have none: the schedule is a
    # function of the recipe and the step, so the scheduler built from the recipe is the same.
    if "scheduler" in manifest:
        sched = manifest["scheduler"]
        if not isinstance(sched, dict) or len(sched.get("base_values", ())) != len(have):
            raise ValueError(f"The scheduler state in {MANIFEST} is malformed ({sched!r:.200}); "
                             "the run directory was modified by hand. Restore the file, or start "
                             "a new run_dir.")
        scheduler.load_state_dict(sched)
    torch.set_rng_state(tensors["rng.torch"])


# --------------------------------------------------------------------------- the step log
def read_log(run_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of ``<run_dir>/log.jsonl`` (one dict per logged step)."""
    path = Path(run_dir) / LOG_NAME
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _truncate_log(run_dir: Path, step: int) -> None:
    # A killed run may have logged steps after its last checkpoint; the resumed run redoes them.
    recs = [r for r in read_log(run_dir) if r.get("step", 0) <= step]
    text = "".join(json.dumps(r) + "\n" for r in recs)
    _atomic(run_dir / LOG_NAME, text.encode())


def read_probe_log(run_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The probe records of a run (``probe.jsonl``; empty when it was not probed)."""
    path = Path(run_dir) / PROBE_LOG
    if not path.is_file():
        return []
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]


def plot_loss_curve(run_dir: str | os.PathLike[str], out: str | os.PathLike[str] | None = None
                    ) -> Path:
    """Plot the loss terms of ``log.jsonl`` against the step into a PNG.

    Args:
        run_dir: Folder of a pretraining run.
        out: PNG path; default ``<run_dir>/loss_curve.png``.

    Returns:
        The PNG path.
    """
    from hsizoo._optional import require

    matplotlib = require("matplotlib", "Plotting the loss curve")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = read_log(run_dir)
    if not recs:
        raise ValueError(f"{Path(run_dir) / LOG_NAME} has no records to plot.")
    out = Path(out) if out else Path(run_dir) / "loss_curve.png"
    steps = np.array([r["step"] for r in recs])
    probes = read_probe_log(run_dir)
    if probes:
        fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=110)
        ax2.plot([p["step"] for p in probes], [p["linear_oa"] for p in probes], "o-")
        ax2.set_xlabel("step")
        ax2.set_ylabel("overall accuracy (%)")
        ax2.set_title(f"{probes[-1]['shots']}-shot linear probe, {probes[-1]['scene']}",
                      fontsize=9)
        ax2.grid(alpha=0.3)
    else:
        fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
    for key, style in (("loss", "-"), ("rec_spatial", "--"), ("rec_spectral", ":"), ("fdc", "-."),
                       ("contrast", (0, (5, 1, 1, 1)))):
        vals = np.array([r.get(key, np.nan) for r in recs], dtype=float)
        if np.isfinite(vals).any():
            k = max(1, len(vals) // 100)  # moving average for readability
            sm = np.convolve(vals, np.ones(k) / k, mode="valid")
            ax.plot(steps[k - 1:], sm, linestyle=style, label=key)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (moving average)")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(f"{recs[-1].get('model', '')} pretraining loss".strip())
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out
