"""Pretraining from patch shards: bounded memory whatever the archive's size.

:class:`ShardData` samples like :class:`~hsizoo.pretrain.data.PretrainData` (same
:class:`~hsizoo.pretrain.data.SubBatch` output, same masks) but reads patches from the shards of
``hsizoo shard-scenes`` (:mod:`hsizoo.pretrain.shards`) instead of scenes held in memory:

* Rank ``r`` of ``W`` owns shards ``i`` with ``i % W == r`` and opens no other; an index with
  fewer shards than ranks is refused.
* Counter-based: the draws of step ``s`` come from ``numpy.random.default_rng([seed, s])`` for
  the global batch (a shard key, a row key, the spatial and spectral mask keys, the view shift),
  and rank ``r`` takes rows ``r * batch_size`` to ``(r + 1) * batch_size``, choosing among *its
  own* shards. The patches of step ``s`` on rank ``r`` thus depend only on (seed, s, r, W) and
  the index, and a resumed run draws exactly what the uninterrupted one would have (with the
  same number of processes).
* Each step opens the shards it reads with ``np.load(mmap_mode="r")``, copies out its rows and
  closes them: only the patches of one step are materialised.
* Shard weights: a scene's weight ("equal": 1; "pixels": its valid pixel count) is spread over
  its patches, and each rank renormalises over the shards it owns.

Each patch is standardised with its scene's valid-pixel statistics (from the index), invalid
pixels are set to 0, and it is resampled onto the encoder's canonical grid, as
:class:`PretrainData` does for a whole scene. Shards cut with a larger patch than the encoder's
are cropped to the centre; the neighbouring view of ``contrast_weight`` is cropped from the same
stored patch, so it needs ``patch_size >= P + 2 * view_offset`` at cutting time (a shifted
centre that is not valid keeps the patch's own centre).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn

from hsizoo.pretrain.data import SubBatch, _augment_views, spatial_mask, spectral_mask
from hsizoo.pretrain.shards import index_path, read_shard_index

SHARD_READS = "shard_reads.json"


def shard_location(shards: str | os.PathLike[str]) -> str:
    """The absolute folder of a shard index (given the folder or its ``index.json``)."""
    return str(index_path(shards).resolve().parent)


def index_sha256(shards: str | os.PathLike[str]) -> str:
    """sha256 of a shard folder's ``index.json`` (recorded in checkpoints, checked on resume)."""
    return hashlib.sha256(index_path(shards).read_bytes()).hexdigest()


class ShardData:
    """This rank's shards, ready for counter-based patch and mask sampling.

    Args:
        shards: Folder written by ``hsizoo shard-scenes`` (or its ``index.json``).
        encoder: The S2Former whose grid, patch size and groups define the samples.
        scene_weighting: "equal" or "pixels".
        device: Where the sampled batches go.
        rank: This process's rank.
        world_size: Number of processes.

    Attributes:
        owned: File names of the shards this rank may read.
        opened: File names of the shards this rank has opened so far.

    Raises:
        ValueError: fewer shards than ranks, a shard patch smaller than the encoder's, or a
            shard whose file does not match the index.
        FileNotFoundError: no index, or a shard file of this rank missing.
    """

    def __init__(self, shards: str | os.PathLike[str], encoder: nn.Module,
                 scene_weighting: str = "equal", device: torch.device | str = "cpu",
                 rank: int = 0, world_size: int = 1) -> None:
        from hsizoo.spectral.grid import canonical_resampler

        index = read_shard_index(shards)
        self.folder = index_path(shards).parent
        self.rank, self.world_size, self.device = int(rank), int(world_size), torch.device(device)
        self.P, self.Ps = int(encoder.patch_size), int(index["patch_size"])
        self.num_groups = int(encoder.num_groups)
        if self.Ps < self.P or (self.Ps - self.P) % 2:
            raise ValueError(f"The shards in {self.folder} hold {self.Ps} x {self.Ps} patches and "
                             f"the encoder needs {self.P} x {self.P}: recut them with "
                             f"--patch-size {self.P} (or larger by an even number).")
        entries = index["shards"]
        if len(entries) < self.world_size:
            raise ValueError(
                f"{self.folder} holds {len(entries)} shard(s) for {self.world_size} processes; "
                "every process reads its own shards (shard i goes to rank i % world size), so "
                f"each needs at least one. Recut with a smaller --patches-per-shard (at most "
                f"{max(1, sum(e['patches'] for e in entries) // self.world_size)}), or run "
                f"{len(entries)} process(es) or fewer.")
        scenes = {s["key"]: s for s in index["scenes"]}
        order = list(scenes)
        self.stats, self.weights_g, self.present, self.group_present, self.key_of = [], [], [], [], []
        keys: dict[bytes, int] = {}
        for key in order:
            s = scenes[key]
            res = canonical_resampler(s["wavelengths"], encoder.grid)
            self.stats.append((np.asarray(s["mean"], np.float32), np.asarray(s["std"], np.float32)))
            self.weights_g.append(torch.as_tensor(res.weights))
            pres = torch.as_tensor(res.present)
            self.present.append(pres.to(self.device))
            self.group_present.append(encoder.group_presence(pres).numpy())
            self.key_of.append(keys.setdefault(res.present.tobytes(), len(keys)))
        own = [i for i in range(len(entries)) if i % self.world_size == self.rank]
        self.owned = [entries[i]["file"] for i in own]
        self.sizes = np.array([entries[i]["patches"] for i in own], dtype=np.int64)
        pos = {key: n for n, key in enumerate(order)}
        self.shard_scene = np.array([pos[entries[i]["scene"]] for i in own])
        w = []
        for i in own:
            s = scenes[entries[i]["scene"]]
            base = 1.0 if scene_weighting == "equal" else float(s["valid_pixels"])
            w.append(base * entries[i]["patches"] / s["patches"])
        cdf = np.cumsum(w)
        self.cdf = cdf / cdf[-1]
        self.opened: set[str] = set()
        for name, entry in zip(self.owned, (entries[i] for i in own)):
            mm = self._open(name)  # a missing or truncated shard fails now, not at step 10000
            if list(mm.shape) != list(entry["shape"]) or mm.dtype != np.float32:
                raise ValueError(f"Shard {self.folder / name} holds {mm.dtype} {list(mm.shape)}, "
                                 f"the index says float32 {entry['shape']}: the folder was "
                                 "modified; rerun `hsizoo shard-scenes` on it to recut.")
            del mm

    def _open(self, name: str) -> np.ndarray:
        self.opened.add(name)
        return np.load(self.folder / name, mmap_mode="r", allow_pickle=False)

    def _read(self, picks: np.ndarray, rows: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """{own shard position: (positions in the share, patches)} for these picks."""
        out = {}
        for j in np.unique(picks):
            at = np.flatnonzero(picks == j)
            uniq, inv = np.unique(rows[at], return_inverse=True)
            mm = self._open(self.owned[j])
            block = np.array(mm[uniq])  # only these rows are read and copied
            del mm  # unmapped: nothing of the shard stays resident
            out[int(j)] = (at, block[inv])
        return out

    def _canonical(self, s: int, x: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw (n, Ps, Ps, B) patches of scene s -> canonical (n, G, Ps, Ps) and valid (n, Ps, Ps)."""
        mean, std = self.stats[s]
        z = ((x - mean) / std).astype(np.float32)
        valid = np.isfinite(z).all(axis=-1)
        z = np.where(valid[..., None], z, np.float32(0.0))
        xt = torch.einsum("gb,nhwb->nghw", self.weights_g[s], torch.as_tensor(z))
        return xt.contiguous(), torch.as_tensor(valid, dtype=torch.float32)

    def _crop(self, x: torch.Tensor, at: np.ndarray) -> torch.Tensor:
        """P x P crops of (n, ..., Ps, Ps) whose top-left corners are ``at`` (n, 2)."""
        off = torch.arange(self.P)
        rr = (torch.as_tensor(at[:, 0])[:, None] + off)[:, :, None]
        cc = (torch.as_tensor(at[:, 1])[:, None] + off)[:, None, :]
        n = torch.arange(x.shape[0])[:, None, None]
        y = x[n, ..., rr, cc]  # (n, P, P, ...)
        return y.permute(0, *range(3, y.ndim), 1, 2).contiguous() if y.ndim > 3 else y

    def sample(self, step: int, seed: int, batch_size: int, mask_ratio: float,
               spectral_mask_ratio: float, rank: int = 0, world_size: int = 1,
               view_offset: int | None = None) -> list[SubBatch]:
        """This rank's share of the global batch of step ``step`` (see the module docstring).

        ``rank`` and ``world_size`` must be those the data was opened with. With
        ``view_offset`` each patch also gets two augmented views, as in
        :meth:`PretrainData.sample`.
        """
        if (int(rank), int(world_size)) != (self.rank, self.world_size):
            raise ValueError(f"These shards were opened for rank {self.rank} of "
                             f"{self.world_size}; sample(rank={rank}, world_size={world_size}) "
                             "needs its own ShardData.")
        P, N, c = self.P, self.P * self.P, (self.Ps - self.P) // 2
        if view_offset is not None and view_offset > c:
            raise ValueError(
                f"view_offset {view_offset} needs shards of at least {self.P + 2 * view_offset} "
                f"x {self.P + 2 * view_offset} patches to crop the neighbouring view from; these "
                f"are {self.Ps} x {self.Ps}. Recut with --patch-size {self.P + 2 * view_offset},"
                " or lower view_offset.")
        total = batch_size * self.world_size
        rng = np.random.default_rng([int(seed), int(step)])
        u_shard = rng.random(total)
        u_row = rng.random(total)
        sp_mask = spatial_mask(rng, total, N, mask_ratio)
        se_keys = rng.random((total, self.num_groups))
        shift = (rng.integers(-view_offset, view_offset + 1, (total, 2))
                 if view_offset is not None else None)
        share = slice(self.rank * batch_size, (self.rank + 1) * batch_size)
        picks = np.minimum(np.searchsorted(self.cdf, u_shard[share], side="right"),
                           len(self.owned) - 1)
        rows = np.minimum((u_row[share] * self.sizes[picks]).astype(np.int64),
                          self.sizes[picks] - 1)
        sp_mask, se_keys = sp_mask[share], se_keys[share]
        if shift is not None:
            shift = shift[share]
        scene_idx = self.shard_scene[picks]
        keys = np.array([self.key_of[s] for s in scene_idx])
        read = self._read(picks, rows)
        out = []
        for key in np.unique(keys):
            parts_x, parts_v, parts_n, parts_rows = [], [], [], []
            for j, (at, raw) in read.items():
                sel = keys[at] == key
                if not sel.any():
                    continue
                at, raw = at[sel], raw[sel]
                full, valid = self._canonical(int(self.shard_scene[j]), raw)
                corner = np.full((at.size, 2), c)
                parts_x.append(self._crop(full, corner))
                parts_v.append(self._crop(valid, corner))
                parts_rows.append(at)
                if shift is not None:
                    mid = self.Ps // 2
                    sr, sc = (torch.as_tensor(mid + shift[at, i]) for i in (0, 1))
                    ok = valid[torch.arange(at.size), sr, sc] > 0.5
                    moved = np.where(ok.numpy()[:, None], c + shift[at], c)
                    parts_n.append(self._crop(full, moved))
            rows_k = np.concatenate(parts_rows)
            order = torch.as_tensor(np.argsort(rows_k, kind="stable"))
            rows_k = np.sort(rows_k)
            dev = self.device
            xc = torch.cat(parts_x)[order].to(dev)
            s0 = int(scene_idx[rows_k[0]])
            views = None
            if shift is not None:
                xn = torch.cat(parts_n)[order].to(dev)
                pres = self.present[s0]
                gens = [np.random.default_rng([int(seed), int(step), 1,
                                               int(self.rank * batch_size + i)]) for i in rows_k]
                views = torch.stack([_augment_views(xc, pres, gens), _augment_views(xn, pres, gens)])
            out.append(SubBatch(
                xc=xc, valid=torch.cat(parts_v)[order].to(dev), present=self.present[s0],
                spatial_mask=torch.as_tensor(sp_mask[rows_k], device=dev),
                spectral_mask=torch.as_tensor(
                    spectral_mask(self.group_present[s0], se_keys[rows_k], spectral_mask_ratio),
                    device=dev),
                views=views))
        return out


def check_shard_resume(manifest: dict[str, Any], shards: str, world_size: int) -> None:
    """Refuse a resume whose shards or process count differ from the run's (it would draw other
    patches than the uninterrupted run)."""
    was = manifest.get("shards_index_sha256")
    if was is not None and was != index_sha256(shards):
        raise ValueError(f"resume: the shard index {index_path(shards)} changed since this run "
                         "was checkpointed (scenes were added or recut), so the run cannot keep "
                         "its place. Resume with the shards it started with, or start a new "
                         "run_dir.")
    ws = int(manifest.get("world_size", 1))
    if ws != world_size:
        raise ValueError(f"resume: this run read its shards on {ws} process(es) and this resume "
                         f"has {world_size}; each rank reads its own shards, so resume with "
                         f"{ws} process(es) (torchrun --nproc-per-node {ws}).")


def write_shard_reads(run_dir: Path, data: ShardData, dist_on: bool) -> None:
    """Rank 0 writes ``shard_reads.json``: the shards each rank owned and opened in this call."""
    import json

    mine = dict(rank=data.rank, owned=data.owned, opened=sorted(data.opened))
    everyone: Sequence[Any] = [mine]
    if dist_on:
        import torch.distributed as dist

        gathered: list[Any] = [None] * data.world_size
        dist.all_gather_object(gathered, mine)
        everyone = gathered
    if data.rank == 0:
        from hsizoo.io.atomic import write_atomic

        text = json.dumps(dict(shards=str(data.folder), world_size=data.world_size,
                               ranks=list(everyone)), indent=1)
        write_atomic(Path(run_dir) / SHARD_READS, text.encode(), overwrite=True)
