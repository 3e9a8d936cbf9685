"""Pretraining data: scene specs, and counter-based sampling of patches and masks.

Scenes of any sensor are standardised, padded and resampled onto the encoder's canonical grid
once (:class:`PretrainData`); the patches and masks of step ``s`` are drawn from
``numpy.random.default_rng([seed, s])`` for the *global* batch and rank ``r`` of ``W`` takes
rows ``r * batch_size`` to ``(r + 1) * batch_size``, so a resumed run draws exactly what the
uninterrupted run would have, and W processes what one process with W times the batch draws.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn


def _data_root(root: str | os.PathLike[str] | None) -> Path:
    if root is not None:
        return Path(root)
    from hsizoo.data.layouts import data_dir

    return data_dir()


_SIM_OPTIONS = {"fields": ("field_variability", float), "kind": ("layout_kind", str),
                "per_class": ("fields_per_class", int), "pool": ("material_pool", "pool"),
                "names": ("names", str), "variability": ("variability", float),
                "noise_snr": ("noise_snr", float), "skew": ("class_skew", float)}


def _parse_pool(text: str) -> int | dict[str, int]:
    """``pool=3`` or ``pool=vegetation3+soil1+npv1``."""
    import re

    if text.isdigit():
        return int(text)
    parts = [re.fullmatch(r"([a-z_]+?)(\d+)", t) for t in text.split("+")]
    if not parts or any(m is None for m in parts):
        raise ValueError(text)
    return {m.group(1): int(m.group(2)) for m in parts if m is not None}


def _simulation_options(spec: str, text: str) -> dict[str, Any]:
    """The ``key=value/...`` fifth part of a simulated scene spec, as simulate_scene keywords."""
    out: dict[str, Any] = {}
    for item in filter(None, (t.strip() for t in text.split("/"))):
        key, sep, value = item.partition("=")
        if not sep or key.strip() not in _SIM_OPTIONS:
            raise ValueError(f"Bad option {item!r} in scene spec {spec!r}: use key=value with key "
                             f"one of {', '.join(_SIM_OPTIONS)}.")
        name, kind = _SIM_OPTIONS[key.strip()]
        try:
            out[name] = _parse_pool(value.strip()) if kind == "pool" else kind(value.strip())
        except ValueError:
            what = ("an int or cover types with counts, e.g. vegetation3+soil1+npv1"
                    if kind == "pool" else f"a {kind.__name__}")
            raise ValueError(f"Bad value in {item!r} of scene spec {spec!r}: {key.strip()} takes "
                             f"{what}.") from None
    return out


def load_scene_spec(spec: str, data_root: str | os.PathLike[str] | None = None) -> Any:
    """Turn a scene spec into a :class:`~hsizoo.io.scene.Scene`.

    Specs:
        * ``"indian_pines"`` (or any name of :func:`hsizoo.data.catalogue.list_datasets`): the real
          scene from ``data_root`` (default ``$HSIZOO_DATA_DIR`` or ``../shared/data/hsi``).
          Its labels are loaded but pretraining never uses them.
        * ``"simulated:<sensor>:<layout>:<seed>"``: :func:`hsizoo.data.simulate.simulate_scene` with
          a sensor preset, a layout that is either a real label map name (``pavia_university``,
          ``salinas``, ``ksc``, ``indian_pines``) or a generated one ``HxW`` / ``HxWxK``
          (K classes, default 8), and a seed. An optional fifth part sets more of the
          simulation, ``key=value`` pairs separated by ``/`` (not commas, which separate scenes in
          scene lists): ``fields`` (the scene's
          ``field_variability``), ``kind`` (``voronoi`` or ``fields`` for a generated layout),
          ``per_class`` (fields per class of a ``fields`` layout), ``pool`` (the
          ``material_pool``: ``3``, or ``vegetation3+soil1+npv1``),
          ``names`` (classes named ``<names> 1`` .. ``<names> K``: ``names=crop`` makes every
          class a crop, as on Indian Pines), ``variability``, ``noise_snr``, ``skew`` (the ``class_skew`` of a generated layout:
          unequal class areas). Example:
          ``simulated:aviris_indian_pines:145x145x16:3:kind=fields/per_class=3/names=crop/pool=vegetation3+soil1+npv1``.
        * a path to a GeoTIFF / ENVI / .mat file: :func:`hsizoo.io.read_scene`.

    Args:
        spec: The spec.
        data_root: Folder of the benchmark data.

    Returns:
        The Scene.

    Raises:
        ValueError: a spec that is none of the above.
    """
    spec = str(spec).strip()
    if spec.startswith("simulated:"):
        from hsizoo.data.simulate import simulate_scene

        parts = spec.split(":")
        if len(parts) not in (4, 5):
            raise ValueError(f"Bad scene spec {spec!r}: use simulated:<sensor>:<layout>:<seed>, "
                             "e.g. simulated:enmap:128x128:3 or simulated:rosis:salinas:1.")
        _, sensor, layout, seed = parts[:4]
        extra = _simulation_options(spec, parts[4]) if len(parts) == 5 else {}
        dims = layout.lower().split("x")
        num_classes = 8
        lay: Any = layout
        if all(d.isdigit() for d in dims) and len(dims) in (2, 3):
            lay = (int(dims[0]), int(dims[1]))
            num_classes = int(dims[2]) if len(dims) == 3 else 8
        if data_root is not None:
            os.environ.setdefault("HSIZOO_DATA_DIR", str(data_root))
        names = extra.pop("names", None)
        if names is not None:
            k = num_classes if isinstance(lay, tuple) else None
            if k is None:
                raise ValueError(f"Bad scene spec {spec!r}: names= applies to a generated layout "
                                 "(HxW or HxWxK); a named layout has its own class names.")
            extra["class_names"] = [f"{names} {i}" for i in range(1, k + 1)]
        return simulate_scene(lay, sensor=sensor, seed=int(seed), num_classes=num_classes,
                              **extra)
    from hsizoo.data.catalogue import list_datasets

    if spec.lower() in list_datasets():
        from hsizoo.data.download import load_dataset

        return load_dataset(spec.lower(), root=_data_root(data_root), progress=False)
    if Path(spec).exists():
        from hsizoo.io import read_scene

        return read_scene(spec)
    raise ValueError(f"Unknown scene {spec!r}: give a dataset name ({', '.join(list_datasets())}),"
                     " simulated:<sensor>:<layout>:<seed>, or the path of a scene file.")


def _describe_scene(scene: Any) -> str:
    name = scene.meta.get("dataset") if isinstance(scene.meta, dict) else None
    name = name or scene.path or scene.sensor or "scene"
    h, w, b = scene.cube.shape
    return f"<Scene {name} {h}x{w}x{b}>"


@dataclass
class SubBatch:
    """Patches of one step that share one set of covered grid points (one sensor).

    Attributes:
        xc: (b, G, P, P) canonical standardised patches (missing points 0).
        valid: (b, P, P) float, 1 where the patch pixel is a valid scene pixel.
        present: (G,) bool, covered grid points.
        spatial_mask: (b, P*P) bool, masked pixel tokens.
        spectral_mask: (b, num_groups) bool, masked spectral groups.
        views: Two augmented, unmasked views (2, b, G, P, P) of each patch for the view-agreement
            term (the same centre, or a neighbour within ``view_offset`` pixels, each with its
            own flip/rotation, gain, offset and noise); None when that term is off.
    """

    xc: torch.Tensor
    valid: torch.Tensor
    present: torch.Tensor
    spatial_mask: torch.Tensor
    spectral_mask: torch.Tensor
    views: torch.Tensor | None = None


def spatial_mask(rng: np.random.Generator, total: int, tokens: int, ratio: float) -> np.ndarray:
    """(total, tokens) bool: exactly round(ratio * tokens) masked tokens per patch (at least one,
    never all), at random positions drawn from ``rng``."""
    n = min(tokens - 1, max(1, int(round(ratio * tokens))))
    order = np.argsort(rng.random((total, tokens)), axis=1)
    mask = np.zeros((total, tokens), dtype=bool)
    np.put_along_axis(mask, order[:, :n], True, axis=1)
    return mask


def spectral_mask(group_present: np.ndarray, keys: np.ndarray, ratio: float) -> np.ndarray:
    """Masked spectral groups of patches of one sensor: the ``k`` present groups with the lowest
    keys, ``k = round(ratio * present)`` clipped to [1, present - 1] (none when ``ratio`` is 0
    or fewer than two groups are present).

    Args:
        group_present: (num_groups,) bool, the groups the sensor covers.
        keys: (b, num_groups) uniform random keys, one row per patch.
        ratio: Fraction of the present groups to mask.

    Returns:
        (b, num_groups) bool.
    """
    n_present = int(group_present.sum())
    k = 0 if ratio <= 0 or n_present < 2 else \
        min(n_present - 1, max(1, int(round(ratio * n_present))))
    order_keys = np.where(group_present[None], keys, np.inf)
    se_order = np.argsort(order_keys, axis=1)
    se_mask = np.zeros(keys.shape, dtype=bool)
    if k:
        np.put_along_axis(se_mask, se_order[:, :k], True, axis=1)
    return se_mask


def _dihedral(x: torch.Tensor, k: np.ndarray) -> torch.Tensor:
    """Apply dihedral transform k[i] (0..7: rotation k % 4, transposed if k >= 4) to x[i]."""
    out = x.clone()
    for t in np.unique(k):
        sel = torch.as_tensor(np.flatnonzero(k == t), device=x.device)
        y = x[sel]
        if t >= 4:
            y = y.transpose(-1, -2)
        out[sel] = torch.rot90(y, int(t) % 4, dims=(-2, -1))
    return out


def _augment_views(x: torch.Tensor, present: torch.Tensor, gens: Sequence[np.random.Generator]
                   ) -> torch.Tensor:
    """Random dihedral transform, per-patch gain and offset, and noise, on covered points only.

    ``gens[i]`` draws the augmentation of patch i (one generator per global sample, so any
    split of the global batch over processes draws the same augmentations).
    """
    k = np.array([g.integers(0, 8) for g in gens])
    gain = np.array([g.uniform(0.8, 1.2) for g in gens], np.float32)
    offset = np.array([g.normal(0.0, 0.2) for g in gens], np.float32)
    noise = np.stack([g.standard_normal(x.shape[1:], dtype=np.float32) for g in gens]) * 0.05
    dev = x.device
    y = _dihedral(x, k) * torch.as_tensor(gain, device=dev).view(-1, 1, 1, 1) \
        + torch.as_tensor(offset, device=dev).view(-1, 1, 1, 1) + torch.as_tensor(noise, device=dev)
    return y * present.to(y.dtype).view(1, -1, 1, 1)


class PretrainData:
    """Scenes on the canonical grid, ready for counter-based patch and mask sampling.

    Each scene is standardised with its own :func:`hsizoo.spectral.grid.band_stats`, padded with
    :func:`hsizoo.data.patches.prepare_cube` and resampled onto the encoder's canonical grid once.

    Args:
        scenes: Scene objects.
        encoder: The S2Former whose grid, patch size and groups define the samples.
        scene_weighting: "equal" or "pixels".
        device: Where the cubes live.
        stats: Per-scene :class:`~hsizoo.spectral.grid.BandStats` to standardise with instead of
            each scene's own (e.g. the statistics a fine-tuned model was trained with).
    """

    def __init__(self, scenes: Sequence[Any], encoder: nn.Module, scene_weighting: str = "equal",
                 device: torch.device | str = "cpu", stats: Sequence[Any] | None = None) -> None:
        from hsizoo.data.patches import prepare_cube
        from hsizoo.spectral.grid import band_stats, canonical_resampler

        if not scenes:
            raise ValueError("No scenes to pretrain on: pass at least one Scene or scene spec.")
        self.P = int(encoder.patch_size)
        self.num_groups = int(encoder.num_groups)
        self.group_size = int(encoder.group_size)
        self.cubes: list[torch.Tensor] = []
        self.valids: list[torch.Tensor] = []
        self.centres: list[np.ndarray] = []
        self.present: list[torch.Tensor] = []
        self.group_present: list[np.ndarray] = []
        self.widths: list[int] = []
        keys: dict[bytes, int] = {}
        self.key_of: list[int] = []
        if stats is not None and len(stats) != len(scenes):
            raise ValueError(f"Got {len(stats)} band statistics for {len(scenes)} scenes; give "
                             "one per scene, or None to compute them.")
        for i, scene in enumerate(scenes):
            valid = np.asarray(scene.valid, dtype=bool)
            if not valid.any():
                raise ValueError(f"{_describe_scene(scene)} has no valid pixel to sample.")
            st = stats[i] if stats is not None else band_stats(scene.cube, valid)
            std = st.apply(scene.cube)
            res = canonical_resampler(scene.wavelengths, encoder.grid)
            padded = prepare_cube(std, valid, self.P)  # (B, H+2r, W+2r)
            w = torch.as_tensor(res.weights)
            self.cubes.append(torch.einsum("gb,bhw->ghw", w, padded).contiguous().to(device))
            vpad = prepare_cube(valid[..., None].astype(np.float32), None, self.P)
            self.valids.append(vpad.to(device))
            self.centres.append(np.flatnonzero(valid.reshape(-1)))
            self.widths.append(valid.shape[1])
            pres = torch.as_tensor(res.present)
            self.present.append(pres.to(device))
            self.group_present.append(encoder.group_presence(pres).numpy())
            self.key_of.append(keys.setdefault(res.present.tobytes(), len(keys)))
        n = np.array([c.size for c in self.centres], dtype=np.float64)
        self.weights = (np.full(len(n), 1.0 / len(n)) if scene_weighting == "equal" else n / n.sum())

    def sample(self, step: int, seed: int, batch_size: int, mask_ratio: float,
               spectral_mask_ratio: float, rank: int = 0, world_size: int = 1,
               view_offset: int | None = None) -> list[SubBatch]:
        """This rank's share of the global batch of step ``step`` (see module docstring).

        With ``view_offset`` (pixels, >= 0) each patch also gets two augmented views for the
        view-agreement term: the second view is centred on a valid pixel up to ``view_offset``
        rows and columns away (the same pixel when the drawn one is not valid). Those draws come
        after all others, so sampling without views is unchanged.
        """
        from hsizoo.data.patches import gather_patches

        P, N = self.P, self.P * self.P
        total = batch_size * world_size
        rng = np.random.default_rng([int(seed), int(step)])
        scene_idx = rng.choice(len(self.cubes), size=total, p=self.weights)
        u = rng.random(total)
        sp_mask = spatial_mask(rng, total, N, mask_ratio)
        se_keys = rng.random((total, self.num_groups))
        shift = (rng.integers(-view_offset, view_offset + 1, (total, 2))
                 if view_offset is not None else None)
        share = slice(rank * batch_size, (rank + 1) * batch_size)
        scene_idx, u, sp_mask, se_keys = scene_idx[share], u[share], sp_mask[share], se_keys[share]
        if shift is not None:
            shift = shift[share]
        out = []
        keys = np.array([self.key_of[s] for s in scene_idx])
        for key in np.unique(keys):
            rows = np.flatnonzero(keys == key)  # ascending positions in this rank's share
            parts_x, parts_v, parts_rows, parts_n = [], [], [], []
            for s in np.unique(scene_idx[rows]):
                sel = rows[scene_idx[rows] == s]
                n_s = self.centres[s].size
                pix = self.centres[s][np.minimum((u[sel] * n_s).astype(np.int64), n_s - 1)]
                r, c = np.divmod(pix, self.widths[s])
                parts_x.append(gather_patches(self.cubes[s], r, c, P))
                parts_v.append(gather_patches(self.valids[s], r, c, P)[:, 0])
                parts_rows.append(sel)
                if shift is not None:
                    r2, c2 = self._neighbour(s, r, c, shift[sel])
                    parts_n.append(gather_patches(self.cubes[s], r2, c2, P))
            order = torch.as_tensor(np.argsort(np.concatenate(parts_rows), kind="stable"))
            xc = torch.cat(parts_x)[order.to(parts_x[0].device)]
            vv = torch.cat(parts_v)[order.to(parts_v[0].device)]
            s0 = scene_idx[rows[0]]
            se_mask = spectral_mask(self.group_present[s0], se_keys[rows], spectral_mask_ratio)
            dev = xc.device
            views = None
            if shift is not None:
                xn = torch.cat(parts_n)[order.to(dev)]
                pres = self.present[s0]
                gens = [np.random.default_rng([int(seed), int(step), 1, int(rank * batch_size + i)])
                        for i in rows]
                views = torch.stack([_augment_views(xc, pres, gens),
                                     _augment_views(xn, pres, gens)])
            out.append(SubBatch(
                xc=xc, valid=vv, present=self.present[s0],
                spatial_mask=torch.as_tensor(sp_mask[rows], device=dev),
                spectral_mask=torch.as_tensor(se_mask, device=dev), views=views))
        return out

    def _neighbour(self, s: int, r: np.ndarray, c: np.ndarray, shift: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
        """(r, c) moved by ``shift`` inside the scene, kept where the new pixel is not valid."""
        H = self.valids[s].shape[-2] - 2 * (self.P // 2)
        W = self.widths[s]
        r2 = np.clip(r + shift[:, 0], 0, H - 1)
        c2 = np.clip(c + shift[:, 1], 0, W - 1)
        rad = self.P // 2
        ok = self.valids[s][0, torch.as_tensor(r2 + rad), torch.as_tensor(c2 + rad)].cpu().numpy() > 0.5
        return np.where(ok, r2, r), np.where(ok, c2, c)
