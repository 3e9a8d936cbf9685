"""Stage 1 of fine-tuning: from the user's scene, labels and recipe to everything the later
stages share (standardised cube, padded patches, shots, backbone, device)."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np
import torch

from hsizoo.data.patches import gather_patches, prepare_cube
from hsizoo.finetune.inputs import (
    as_scene,
    build_model,
    check_coverage,
    check_fill_values,
    check_scene_valid,
    load_label_map,
    prepare_labels,
)
from hsizoo.finetune.recipe import FinetuneRecipe
from hsizoo.finetune.training import resolve_device
from hsizoo.runtime.device import resolve_precision
from hsizoo.spectral.grid import BandStats, band_stats

__all__ = ["Prepared", "check_scene_size", "prepare"]


@dataclass
class Prepared:
    """The inputs of a fine-tuning run, checked and prepared once.

    Attributes:
        scene: The scene (its ``labels`` the user's full map when one was given).
        wavelengths: Band centres (nm) as float64.
        train: (H, W) training labels: the shots, 0 elsewhere.
        num_classes: K.
        class_names: Names of classes 1..K.
        net: The backbone with a K-class head, on ``device``.
        weights: Which weights it started from, in words.
        device: Where it trains.
        precision: The resolved mixed precision.
        coverage: How much of the model's spectral grid the scene covers.
        stats: Per-band statistics of the scene (its own, never labels).
        std_cube: The standardised cube.
        padded: The standardised cube padded for patches (tensor).
        x_lab: Patches of the shots; ``y`` their classes (0-based).
        unlabelled: (rows, cols) of valid pixels that are not shots.
        gen: The torch generator of sampling and augmentation; ``rng`` numpy's.
    """

    scene: Any
    wavelengths: np.ndarray
    train: np.ndarray
    num_classes: int
    class_names: list[str]
    net: torch.nn.Module
    weights: str
    device: torch.device
    precision: str
    coverage: dict[str, float]
    stats: BandStats
    std_cube: np.ndarray
    padded: torch.Tensor
    x_lab: torch.Tensor
    y: torch.Tensor
    unlabelled: tuple[np.ndarray, np.ndarray]
    gen: torch.Generator
    rng: np.random.Generator

    @property
    def patch_size(self) -> int:
        return int(self.net.patch_size)

    def history(self) -> dict[str, Any]:
        """What the run records about its inputs."""
        return dict(weights=self.weights, num_train=int(len(self.y)),
                    num_classes=self.num_classes, coverage=self.coverage,
                    device=str(self.device), precision=self.precision)


def check_scene_size(scene: Any, patch_size: int, model: Any = None) -> None:
    """Refuse a scene smaller than the model's P x P patch on either side.

    Each pixel is classified from its P x P neighbourhood; a scene narrower than that has no
    pixel with a real neighbourhood (the patches are mostly padding), and fine-tuning on it
    collapses to one class for every pixel, labelled ones included.
    """
    h, w = (int(n) for n in np.shape(scene.cube)[:2])
    P = int(patch_size)
    if h < P or w < P:
        name = f"{model} " if isinstance(model, str) else ""
        raise ValueError(
            f"The scene is {h} x {w} pixels, smaller than the {P} x {P} patch the model "
            f"{name}classifies each pixel from: fine-tuning on it cannot tell the classes apart. "
            f"Give a scene of at least {P} x {P} pixels (a larger crop around the labelled "
            "pixels; prediction can then map any scene of that sensor).")


def prepare(scene_or_cube: Any, labels: Any, shots: int | None, recipe: FinetuneRecipe,
            wavelengths: Sequence[float] | None = None, sensor: str | None = None,
            class_names: Sequence[str] | None = None, nodata: float | None = None) -> Prepared:
    """Read and check the inputs, draw the shots, build the backbone (seeded by the recipe)."""
    seed = recipe.seed
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    scene = as_scene(scene_or_cube, wavelengths, sensor, nodata)
    check_scene_valid(scene)  # before the labels, which an empty scene would be blamed on
    check_fill_values(scene)
    wl = np.asarray(scene.wavelengths, dtype=np.float64)
    if labels is not None:
        # Read (and check) a label file once; keep the user's full map with the scene, so that
        # evaluate() scores against it. A full map (shots drawn from it) replaces labels the
        # scene already carried; a sparse map of training pixels (shots=None) does not, since
        # the scene's own reference is then the only one to score against.
        labels = load_label_map(labels, scene)
        if scene.labels is None or shots is not None:
            scene = replace(scene, labels=labels)
    train, K, names = prepare_labels(labels, scene, shots, seed, class_names)
    dev = resolve_device(recipe.device)
    precision = resolve_precision(recipe.precision, dev)
    net, weights = build_model(recipe.model, recipe.pretrained, recipe.checkpoint_path, K,
                               scene.sensor, scene_wavelengths=wl,
                               **recipe.model_kwargs)
    net = net.to(dev)
    coverage = check_coverage(net, wl)
    P = net.patch_size
    check_scene_size(scene, P, recipe.model)
    stats = band_stats(scene.cube, scene.valid, seed=seed)
    std_cube = stats.apply(scene.cube)
    padded = prepare_cube(std_cube, scene.valid, P)
    r, c = np.nonzero(train)
    y = torch.as_tensor(train[r, c] - 1, dtype=torch.long)
    x_lab = gather_patches(padded, r, c, P)
    unlabelled = np.nonzero(scene.valid & (train == 0))
    return Prepared(scene, wl, train, K, names, net, weights, dev, precision, coverage, stats,
                    std_cube, padded, x_lab, y, unlabelled, gen, rng)
