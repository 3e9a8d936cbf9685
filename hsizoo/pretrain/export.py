"""Publishing: a run's encoder as a Hub-ready folder with a generated model card."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from hsizoo.pretrain.checkpoints import load_checkpoint, plot_loss_curve, read_log, read_probe_log
from hsizoo.pretrain.config import PretrainConfig
from hsizoo.method.objective import build_objective


def export_pretrained(run_dir: str | os.PathLike[str], folder: str | os.PathLike[str], *,
                      tag: str | None = None, hf_hub_id: str | None = None,
                      data: Any = None, sensor: str | None = None, description: str | None = None,
                      overwrite: bool = False) -> Path:
    """Publish a run's encoder as a Hub-ready folder (model.safetensors, config.json, card).

    The card is generated from the config written here: recipe, data, steps, wall time,
    hardware, final loss and the loss curve (plotted from ``log.jsonl`` and copied in).

    Args:
        run_dir: Folder of a finished (or stopped) pretraining run.
        folder: Destination folder (its name should be the Hub repository name).
        tag: Pretrained tag (``architecture.tag``).
        hf_hub_id: Hub repository id.
        data: Description of the training data for the card.
        sensor: Sensor preset of the data, when there is one.
        description: Extra sentence for the card.
        overwrite: Replace existing weights in ``folder``.

    Returns:
        The folder.
    """
    from hsizoo.io.atomic import write_atomic
    from hsizoo.hub.save import save_pretrained

    manifest, tensors = load_checkpoint(run_dir)
    cfg = PretrainConfig(**manifest["config"])
    model = build_objective(cfg)
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    encoder = model.encoder
    folder = Path(folder)
    existing = [n for n in ("model.safetensors", "config.json") if (folder / n).exists()]
    if existing and not overwrite:
        # Checked here too so that a refused export leaves the folder exactly as it was.
        raise FileExistsError(f"{folder} already holds an exported model ({', '.join(existing)})"
                              "; pass overwrite=True to replace it, or choose another folder.")
    folder.mkdir(parents=True, exist_ok=True)
    png = plot_loss_curve(run_dir)
    write_atomic(folder / "loss_curve.png", Path(png).read_bytes(), overwrite=True)
    recs = read_log(run_dir)
    tail = recs[-20:] if recs else []
    mean_sps = (float(np.mean([r["samples_per_s"] for r in recs[len(recs) // 10:]]))
                if recs else None)
    wall = float(manifest.get("wall_time_s", 0.0))
    contrast = cfg.contrast_weight > 0
    views = (f" + view agreement (InfoNCE, weight {cfg.contrast_weight}, views up to "
             f"{cfg.view_offset} px apart)" if contrast else "")
    pretraining = (f"masked spatial/spectral reconstruction with FDC (weight {cfg.fdc_weight})"
                   f"{views}, {manifest['step']} steps x "
                   f"{cfg.batch_size * int(manifest.get('world_size', 1))}"
                   + (f" patches, on the patch shards in {cfg.shards}" if cfg.shards else
                      f" patches, on {len(cfg.scenes)} scene(s)"))
    extra = (f" --contrast-weight {cfg.contrast_weight} --view-offset {cfg.view_offset}"
             if contrast else "")
    training = dict(
        method="masked reconstruction (spatial tokens + spectral groups) + frequency-domain "
               "constraint" + (" + two-view agreement (InfoNCE on the pooled features of two "
                               "augmented, neighbouring patches)" if contrast else "")
               + ", hsizoo.pretrain",
        steps=int(manifest["step"]), schedule_steps=cfg.steps,
        batch_size=cfg.batch_size * int(manifest.get("world_size", 1)),
        lr=cfg.lr, optimizer=f"AdamW (betas {list(cfg.betas)}, weight decay {cfg.weight_decay}), "
        f"{cfg.warmup_steps} warm-up steps, cosine decay to {cfg.min_lr}",
        mask_ratio=cfg.mask_ratio, spectral_mask_ratio=cfg.spectral_mask_ratio,
        loss=f"MSE(masked spectra) + {cfg.spectral_loss_weight} MSE(masked groups) + "
             f"{cfg.fdc_weight} FDC (hf_gain {cfg.fdc_hf_gain})"
             + (f" + {cfg.contrast_weight} InfoNCE (temperature {cfg.contrast_temperature})"
                if contrast else ""),
        final_loss=round(float(np.mean([r["loss"] for r in tail])), 5) if tail else None,
        final_rec_spatial=round(float(np.mean([r["rec_spatial"] for r in tail])), 5) if tail else None,
        wall_time_s=round(wall, 1), wall_time=f"{wall / 60:.1f} min",
        samples_per_s=round(mean_sps, 1) if mean_sps else None,
        hardware=manifest.get("hardware"), seed=cfg.seed,
        command="hsizoo pretrain " + (f"--shards {cfg.shards}" if cfg.shards else
                                      " ".join(cfg.scenes)) + f" --model {cfg.model} --steps "
                f"{cfg.steps} --batch-size {cfg.batch_size} --lr {cfg.lr} --fdc-weight "
                f"{cfg.fdc_weight}{extra} --seed {cfg.seed}"
                + (f" --precision {manifest['precision']}"
                   if manifest.get("precision", "fp32") != "fp32" else ""),
    )
    probes = read_probe_log(run_dir)
    probe_curve = None
    if probes:
        probe_curve = dict(
            scene=probes[-1]["scene"], shots=probes[-1]["shots"], seeds=probes[-1]["seeds"],
            steps=[p["step"] for p in probes], linear_oa=[p["linear_oa"] for p in probes])
    config = dict(
        tag=tag, hf_hub_id=hf_hub_id,
        pretraining=pretraining, description=description, sensor=sensor,
        data=data if data is not None else ([f"patch shards {cfg.shards}"] if cfg.shards
                                            else list(cfg.scenes)), training=training,
        normalisation="per-band standardisation of each scene with its own valid-pixel mean and "
                      "std (hsizoo.spectral.grid.band_stats), then canonical resampling",
        loss_curve="loss_curve.png", probe_curve=probe_curve, pretrain_config=cfg.to_json(),
    )
    config = {k: v for k, v in config.items() if v is not None}
    return save_pretrained(encoder, folder, config=config, overwrite=overwrite)
