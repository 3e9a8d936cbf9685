"""Self-supervised pretraining of S2Former: masked reconstruction with the frequency-domain constraint.

DESIGN.md items 2, 3 and 5. A P x P patch around a random valid pixel of one of the training
scenes (any sensors: every scene is resampled onto the canonical wavelength grid) is encoded with

* a large random fraction of its spatial (pixel) tokens replaced by the mask token, and
* some of its *present* spectral groups masked: their tokens are replaced by the mask token and
  their values are hidden from the spatial branch too (set to 0, the standardised mean), so they
  cannot be copied across branches;

and a light decoder reconstructs the masked pixels' canonical spectra and the masked groups'
values over the c x c centre. The loss is the pixel-domain MSE on covered grid points of valid
pixels, plus ``fdc_weight`` times the frequency-domain constraint of :mod:`hsizoo.method.losses`
(rFFT of the reconstructed spectra, rfft2 of the reconstructed patch).

Operations (DESIGN.md, "Scale beyond one machine"):

* AdamW, linear warm-up then cosine decay, gradient clipping; a tqdm bar with loss and samples/s;
  ``<run_dir>/log.jsonl`` with one JSON object per logged step (:func:`plot_loss_curve`).
* Checkpoints without pickles: ``ckpt-<step>.safetensors`` (model, optimiser tensors, torch RNG
  state) and the manifest ``checkpoint.json`` (step, config, optimiser scalars, wall time,
  sha256 of the tensors file), each written to a temporary file in the run directory and renamed
  (the manifest last, so it always points to a complete tensors file). ``resume=True`` continues
  with the same optimiser, schedule, step and sampling; SIGINT/SIGTERM finish the current step,
  write a checkpoint and return; a non-finite loss raises :class:`NonFiniteLossError` before any
  update or checkpoint.
* Sampling is counter-based: the patches and masks of step ``s`` are drawn from
  ``numpy.random.default_rng([seed, s])`` for the *global* batch, and rank ``r`` of ``W`` takes
  its share, rows ``r * batch_size`` to ``(r + 1) * batch_size``. A resumed run therefore draws
  exactly what the uninterrupted run would have, and W processes draw the same global batch as
  one process with W times the batch.
* Under torchrun (``WORLD_SIZE`` > 1): DistributedDataParallel, gloo on CPUs and NCCL on GPUs;
  only rank 0 writes logs and checkpoints (the run directory must be shared for resume).

Modules, one job each: :mod:`.config` (the recipe and schedule), :mod:`.data` (scene specs and
sampling), :mod:`.objective` (the masked-reconstruction model and loss), :mod:`.checkpoints`
(checkpoints, log, loss curve; torchrun setup is :mod:`hsizoo.runtime.distributed`), :mod:`.loop`
(:func:`pretrain`), :mod:`.adapt` (:func:`adapt_to_scene`), :mod:`.export`
(:func:`export_pretrained`) and :mod:`.cli` (``hsizoo pretrain``). Archives larger than memory:
:mod:`.shards` (:func:`shard_scenes`, ``hsizoo shard-scenes``) cuts scenes window by window into
memory-mappable patch shards, and :mod:`.shard_data` (:class:`ShardData`, ``pretrain(shards=DIR)``,
``hsizoo pretrain --shards DIR``) streams them, each rank reading only its own shards.
"""
from __future__ import annotations

import sys
import types
from typing import Any, Sequence

from hsizoo.pretrain.adapt import adapt_to_scene
from hsizoo.pretrain.checkpoints import (LOG_NAME, MANIFEST, PROBE_LOG, load_checkpoint, plot_loss_curve,
                          read_log, read_probe_log, save_checkpoint)
from hsizoo.pretrain.config import NonFiniteLossError, PretrainConfig
from hsizoo.pretrain.data import PretrainData, SubBatch, load_scene_spec
from hsizoo.pretrain.export import export_pretrained
from hsizoo.pretrain.loop import PretrainResult, pretrain
from hsizoo.pretrain.shard_data import ShardData
from hsizoo.pretrain.shards import read_shard_index, shard_scenes
from hsizoo.method.objective import MaskedS2Former, build_objective

__all__ = [
    "PretrainConfig",
    "PretrainResult",
    "MaskedS2Former",
    "build_objective",
    "PretrainData",
    "NonFiniteLossError",
    "pretrain",
    "adapt_to_scene",
    "load_scene_spec",
    "load_checkpoint",
    "export_pretrained",
    "plot_loss_curve",
    "read_log",
    "read_probe_log",
    "PROBE_LOG",
    "shard_scenes",
    "read_shard_index",
    "ShardData",
    # Also public in the single module this package replaces.
    "SubBatch",
    "save_checkpoint",
    "MANIFEST",
    "LOG_NAME",
    "main",
]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hsizoo.pretrain ...``, the same as ``hsizoo pretrain ...``; returns the exit
    status (imported on call: the command line is not loaded with the package)."""
    from hsizoo.cli.pretrain import main as cli_main

    return cli_main(argv)


class _CallableModule(types.ModuleType):
    """``hsizoo.pretrain`` is both this package and its main function: whichever of the two the
    package attribute holds (it depends on import order), calling it pretrains."""

    def __call__(self, *args: Any, **kwargs: Any) -> PretrainResult:
        return pretrain(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
