"""Patch shards: scenes of any size cut into memory-mappable patch files for pretraining.

``hsizoo shard-scenes`` (:func:`shard_scenes`) reads each scene window by window
(:func:`hsizoo.io.iter_windows`, so a scene never has to fit in memory) and writes its patches to
*shards* in an output folder; ``hsizoo pretrain --shards DIR`` (:mod:`hsizoo.pretrain.shard_data`)
streams them back with ``np.load(mmap_mode="r")``.

Format (``index.json``, format ``hsizoo-patch-shards`` version 1):

* Shards are **per scene**: every shard file holds patches of one scene only, in that scene's own
  bands, so scenes of any sensor mix in one folder (each scene's wavelengths are in the index;
  pretraining resamples onto the encoder's canonical grid as it reads).
* ``<name>-<key>-<k>.npy``: float32 array (n, P, P, B), ``n <= patches_per_shard``, the raw
  values of P x P patches (no standardisation). Pixels that are nodata/NaN/inf in any band are
  NaN in all bands; beyond the scene edge the patch is reflected like the in-memory path pads
  (:func:`hsizoo.data.patches.prepare_cube`). A patch is cut only around a *valid* centre pixel.
* ``<name>-<key>-<k>.centres.npy``: int32 (n, 2), the (row, col) of each patch centre.
* ``index.json``: the cutting options, one entry per scene (source and its fingerprint, size,
  wavelengths, valid pixel count, the valid-pixel per-band mean and std used to standardise it,
  its shard files) and one entry per shard (file, scene key, patch count, shape, sha256 of both
  files). Shard ``i`` of the list is read by rank ``i % world_size``.

Which patches: all valid pixels of a scene are centres, or with ``max_patches_per_scene`` M a
uniform random choice of M of them (seeded by ``seed`` and the scene). A scene is read twice,
window by window: once to count valid pixels and accumulate the band statistics, once to cut
the patches. Memory stays near one window plus ``chunk`` patches, whatever the scene's size.

Every file goes through :class:`hsizoo.io.atomic.AtomicFile` (a hidden partial file renamed
when complete), and the index is rewritten after each scene, so an interrupted run keeps the
scenes it finished. A rerun with the same options skips every scene whose source is unchanged
and whose shards are present and match their sha256; scenes already in the index and not
named again stay in it.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from hsizoo.io.atomic import AtomicFile, file_sha256, write_atomic
from hsizoo.runtime.progress import note

INDEX = "index.json"
FORMAT = "hsizoo-patch-shards"
VERSION = 1
# The options that decide the content of the shards: a folder holds shards cut with one set.
_OPTIONS = ("patch_size", "patches_per_shard", "max_patches_per_scene", "seed", "window_size")


def index_path(shards: str | os.PathLike[str]) -> Path:
    """The ``index.json`` of a shard folder (``shards`` is the folder or the index itself)."""
    p = Path(shards).expanduser()
    return p if p.name == INDEX or p.suffix == ".json" else p / INDEX


def read_shard_index(shards: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check the index of a shard folder.

    Args:
        shards: The folder written by ``hsizoo shard-scenes`` or its ``index.json``.

    Returns:
        The index (a dict; see the module docstring).

    Raises:
        FileNotFoundError: no index there.
        ValueError: not a shard index, or a version this hsizoo does not read.
    """
    path = index_path(shards)
    if not path.is_file():
        raise FileNotFoundError(f"No shard index at {path}: cut scenes into shards first with "
                                f"`hsizoo shard-scenes SCENE ... --out {path.parent}`.")
    index = json.loads(path.read_text())
    if index.get("format") != FORMAT:
        raise ValueError(f"{path} is not an hsizoo shard index (format "
                         f"{index.get('format')!r}, expected {FORMAT!r}).")
    if index.get("version") != VERSION:
        raise ValueError(f"{path} has shard format version {index.get('version')}; this hsizoo "
                         f"reads version {VERSION}: recut the scenes with this version.")
    return index


# --------------------------------------------------------------------------- scene sources
def _source(spec: str | os.PathLike[str], sensor: str | None, nodata: float | None,
            window: int) -> tuple[dict[str, Any], dict[str, Any], Callable[[int], Iterator[Any]]]:
    """(fingerprint, description, blocks(halo)) of a scene spec or file."""
    from hsizoo.io import iter_windows, read_scene, read_scene_info

    spec = str(spec)
    p = Path(spec).expanduser()
    if p.exists():
        st = p.stat()
        fp = dict(path=str(p.resolve()), size=st.st_size, mtime_ns=st.st_mtime_ns)
        if p.suffix.lower() == ".mat":  # no windowed reads in that format: read whole
            scene = read_scene(p, sensor=sensor, nodata=nodata)
            wl, nd, blocks = scene.wavelengths, nodata, (
                lambda halo: scene.windows(window, halo=halo))
            h, w, b = scene.cube.shape
        else:
            info = read_scene_info(p, sensor=sensor, nodata=nodata)
            wl, nd, (h, w, b) = info.wavelengths, info.nodata, (
                info.height, info.width, info.num_bands)
            blocks = (lambda halo: iter_windows(p, window, halo=halo, nodata=nd))
        name = p.name.split(".")[0]
    else:
        from hsizoo.pretrain.data import load_scene_spec

        scene = load_scene_spec(spec)  # simulated:... or a dataset name; read whole
        fp = dict(spec=spec)
        wl, nd, blocks = scene.wavelengths, None, (lambda halo: scene.windows(window, halo=halo))
        h, w, b = scene.cube.shape
        name = spec.replace(":", "_")
    fp.update(sensor=sensor, nodata=nodata)
    key = hashlib.sha256(json.dumps(fp.get("path", spec)).encode()).hexdigest()[:10]
    desc = dict(key=key, name=re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:40] or "scene",
                source=fp, height=int(h), width=int(w), num_bands=int(b),
                wavelengths=[float(v) for v in np.asarray(wl, dtype=float)],
                nodata=None if nd is None else float(nd))
    return fp, desc, blocks


def _merge(acc: list[Any], x: np.ndarray) -> None:
    """Fold pixels (n, B) into running (count, mean, M2) in float64 (Chan et al.)."""
    for i in range(0, x.shape[0], 16384):
        part = x[i:i + 16384].astype(np.float64)
        n = part.shape[0]
        mean = part.mean(axis=0)
        m2 = ((part - mean) ** 2).sum(axis=0)
        na = acc[0]
        if na == 0:
            acc[:] = [n, mean, m2]
            continue
        d = mean - acc[1]
        tot = na + n
        acc[:] = [tot, acc[1] + d * n / tot, acc[2] + m2 + d * d * na * n / tot]


def _scan(blocks: Iterator[Any], where: str) -> tuple[list[int], dict[str, list[float]]]:
    """Pass 1: valid pixels per window (cores only) and the valid-pixel band statistics."""
    counts: list[int] = []
    acc: list[Any] = [0, None, None]
    for block in blocks:
        valid = block.crop(block.valid)
        counts.append(int(valid.sum()))
        if counts[-1]:
            _merge(acc, np.asarray(block.crop(block.cube))[valid])
        del block
    if acc[0] == 0:
        raise ValueError(f"{where} has no valid pixel to cut patches around (every pixel is "
                         "nodata, NaN or inf); check its nodata value or leave it out.")
    std = np.sqrt(acc[2] / acc[0])
    # The floor of hsizoo.spectral.grid.band_stats, so constant bands do not divide by zero.
    std = np.maximum(std, max(float(np.median(std)) * 1e-3, 1e-6))
    return counts, dict(mean=[float(v) for v in acc[1].astype(np.float32)],
                        std=[float(v) for v in std.astype(np.float32)])


def _padded(block: Any, r: int, mode: str) -> np.ndarray:
    """The read block as float32, invalid pixels NaN, padded to the core window + r on each side
    (reflected where the block stops at the scene edge, as the in-memory path pads a scene)."""
    cube = np.array(block.cube, dtype=np.float32, copy=True)
    cube[~np.asarray(block.valid, dtype=bool)] = np.nan
    rows, cols = block.core
    h, w = cube.shape[:2]
    pad = ((r - rows.start, r - (h - rows.stop)), (r - cols.start, r - (w - cols.stop)), (0, 0))
    return np.pad(cube, pad, mode=mode) if any(a or b for a, b in pad) else cube


# --------------------------------------------------------------------------- writing shards
class _ShardWriter:
    """Writes one scene's patches to consecutive shards of known sizes, streaming each file."""

    def __init__(self, out: Path, stem: str, sizes: list[int], tail: tuple[int, ...]) -> None:
        self.out, self.stem, self.sizes, self.tail = out, stem, sizes, tail
        self.k, self.filled, self.entries = 0, 0, []
        self.file: AtomicFile | None = None

    def _open(self) -> None:
        n = self.sizes[self.k]
        head = io.BytesIO()
        np.lib.format.write_array_header_1_0(head, dict(descr="<f4", fortran_order=False,
                                                        shape=(n, *self.tail)))
        header = head.getvalue()
        self.name = f"{self.stem}-{self.k:05d}.npy"
        self.file = AtomicFile(self.out / self.name, overwrite=True,
                               expected_size=len(header) + 4 * n * int(np.prod(self.tail)))
        self.fh = open(self.file.tmp, "wb")
        self.sha = hashlib.sha256(header)
        self.fh.write(header)
        self.centres: list[np.ndarray] = []

    def add(self, patches: np.ndarray, centres: np.ndarray) -> None:
        while patches.shape[0]:
            if self.file is None:
                self._open()
            take = min(patches.shape[0], self.sizes[self.k] - self.filled)
            data = np.ascontiguousarray(patches[:take], dtype="<f4").tobytes()
            self.sha.update(data)
            self.fh.write(data)
            self.centres.append(centres[:take])
            self.filled += take
            patches, centres = patches[take:], centres[take:]
            if self.filled == self.sizes[self.k]:
                self._close()

    def _close(self) -> None:
        assert self.file is not None
        self.fh.close()
        self.file.commit()
        n = self.sizes[self.k]
        cen = np.concatenate(self.centres).astype(np.int32)
        buf = io.BytesIO()
        np.save(buf, cen)
        cname = f"{self.stem}-{self.k:05d}.centres.npy"
        write_atomic(self.out / cname, buf.getvalue(), overwrite=True)
        self.entries.append(dict(file=self.name, patches=n, shape=[n, *self.tail],
                                 sha256=self.sha.hexdigest(), centres=cname,
                                 centres_sha256=hashlib.sha256(buf.getvalue()).hexdigest()))
        self.file, self.k, self.filled = None, self.k + 1, 0

    def abort(self) -> None:
        if self.file is not None:
            self.fh.close()
            self.file.abort()


def _cut(blocks: Iterator[Any], counts: list[int], chosen: np.ndarray | None, P: int,
         mode: str, writer: _ShardWriter, chunk: int) -> None:
    """Pass 2: the patches around the chosen valid centres, window by window, into ``writer``."""
    r = P // 2
    off = np.arange(P)
    seen = 0
    for block, count in zip(blocks, counts):
        rows, cols = block.core
        idx = np.flatnonzero(block.crop(block.valid))
        if idx.size != count:
            raise ValueError("The scene changed while it was being cut (window "
                             f"{block.window}); cut it again once it is no longer written.")
        if chosen is not None:
            lo, hi = np.searchsorted(chosen, [seen, seen + count])
            idx = idx[chosen[lo:hi] - seen]
        seen += count
        if idx.size:
            padded = _padded(block, r, mode)
            width = cols.stop - cols.start
            for i in range(0, idx.size, chunk):
                cr, cc = np.divmod(idx[i:i + chunk], width)
                patches = padded[(cr[:, None] + off)[:, :, None], (cc[:, None] + off)[:, None, :]]
                centres = np.stack([cr + block.window.row_off, cc + block.window.col_off], 1)
                writer.add(patches, centres)
                del patches
            del padded
        del block


def _shard_ok(out: Path, entry: dict[str, Any]) -> bool:
    for name, sha in ((entry["file"], entry["sha256"]), (entry["centres"], entry["centres_sha256"])):
        if not (out / name).is_file() or file_sha256(out / name) != sha:
            return False
    return True


def _write_index(out: Path, index: dict[str, Any]) -> None:
    text = json.dumps(index, indent=1).encode()
    path = out / INDEX
    if not path.is_file() or path.read_bytes() != text:
        write_atomic(path, text, overwrite=True)


def shard_scenes(scenes: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], *,
                 patch_size: int, patches_per_shard: int,
                 max_patches_per_scene: int | None = None, seed: int = 0,
                 window_size: int = 256, sensor: str | None = None, nodata: float | None = None,
                 chunk: int = 2048, progress: bool = False) -> dict[str, Any]:
    """Cut scenes into patch shards for ``hsizoo pretrain --shards`` (see the module docstring).

    Args:
        scenes: GeoTIFF / ENVI files (read window by window), .mat files, or scene specs
            (``simulated:...``, dataset names; read whole, for small scenes).
        out: Output folder (created); holds the shards and ``index.json``.
        patch_size: P, odd; at least the encoder's patch size (a larger P is cropped to the
            centre, and leaves room for the neighbouring view of ``contrast_weight``).
        patches_per_shard: N, patches per shard file (a scene's last shard may hold fewer).
        max_patches_per_scene: Cut at most M patches per scene, around a seeded uniform choice
            of its valid pixels; None cuts one patch around every valid pixel.
        seed: Seed of that choice.
        window_size: Rows and columns read at a time.
        sensor: Sensor preset for files without wavelengths.
        nodata: Nodata value overriding the files'.
        chunk: Patches gathered at a time (memory: chunk x P x P x B x 4 bytes).
        progress: Print one line per scene on stderr.

    Returns:
        The index, with ``"written"`` and ``"skipped"`` added (scene keys of this call).

    Raises:
        ValueError: bad options, a scene without valid pixels, or a folder holding shards cut
            with other options.
        FileNotFoundError: a scene that does not exist.
    """
    opts = dict(patch_size=int(patch_size), patches_per_shard=int(patches_per_shard),
                max_patches_per_scene=None if max_patches_per_scene is None
                else int(max_patches_per_scene), seed=int(seed), window_size=int(window_size))
    if opts["patch_size"] < 1 or opts["patch_size"] % 2 == 0:
        raise ValueError(f"patch_size must be a positive odd number (the patch has a centre "
                         f"pixel); got {patch_size}.")
    if opts["patches_per_shard"] < 1:
        raise ValueError(f"patches_per_shard must be >= 1; got {patches_per_shard}.")
    if opts["max_patches_per_scene"] is not None and opts["max_patches_per_scene"] < 1:
        raise ValueError("max_patches_per_scene must be >= 1, or None for every valid pixel; "
                         f"got {max_patches_per_scene}.")
    if not scenes:
        raise ValueError("No scenes to cut: name at least one scene file or spec.")
    out = Path(out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    if (out / INDEX).is_file():
        index = read_shard_index(out)
        old = {k: index.get(k) for k in _OPTIONS}
        if old != opts:
            diff = ", ".join(f"{k}={old[k]} (asked {opts[k]})" for k in _OPTIONS if old[k] != opts[k])
            raise ValueError(f"{out} holds shards cut with other options: {diff}. Cut into "
                             "another --out folder, or rerun with that folder's options.")
    else:
        index = dict(format=FORMAT, version=VERSION, **opts, scenes=[], shards=[])
    P, r = opts["patch_size"], opts["patch_size"] // 2
    written, skipped = [], []
    for spec in scenes:
        fp, desc, blocks = _source(spec, sensor, nodata, opts["window_size"])
        key = desc["key"]
        prev = next((s for s in index["scenes"] if s["key"] == key), None)
        mine = [e for e in index["shards"] if e["scene"] == key]
        if prev is not None and prev["source"] == fp and len(mine) == len(prev["shards"]) \
                and all(_shard_ok(out, e) for e in mine):
            skipped.append(key)
            if progress:
                note(f"[hsizoo shard-scenes] {spec}: {len(mine)} shard(s) present and verified, "
                     "skipped")
            continue
        counts, stats = _scan(blocks(0), str(spec))
        n_valid = sum(counts)
        m = opts["max_patches_per_scene"]
        chosen = None
        total = n_valid
        if m is not None and m < n_valid:
            rng = np.random.default_rng([opts["seed"], int(key, 16)])
            chosen = np.sort(rng.choice(n_valid, size=m, replace=False))
            total = m
        N = opts["patches_per_shard"]
        sizes = [min(N, total - i) for i in range(0, total, N)]
        mode = "reflect" if min(desc["height"], desc["width"]) > r else "edge"
        writer = _ShardWriter(out, f"{desc['name']}-{key}", sizes, (P, P, desc["num_bands"]))
        try:
            _cut(blocks(r), counts, chosen, P, mode, writer, int(chunk))
        except BaseException:
            writer.abort()
            raise
        for e in writer.entries:
            e["scene"] = key
        keep = {e["file"] for e in writer.entries} | {e["centres"] for e in writer.entries}
        for e in mine:  # shards of an earlier cut of this scene that this cut did not rewrite
            for name in (e["file"], e["centres"]):
                if name not in keep:
                    (out / name).unlink(missing_ok=True)
        entry = dict(desc, valid_pixels=n_valid, patches=total, **stats,
                     shards=[e["file"] for e in writer.entries])
        if prev is None:
            index["scenes"].append(entry)
        else:
            index["scenes"][index["scenes"].index(prev)] = entry
        # Shards in the order of the scenes, each scene's in order.
        by_scene = {s["key"]: [] for s in index["scenes"]}
        for e in index["shards"]:
            if e["scene"] != key:
                by_scene[e["scene"]].append(e)
        by_scene[key] = writer.entries
        index["shards"] = [e for s in index["scenes"] for e in by_scene[s["key"]]]
        _write_index(out, index)
        written.append(key)
        if progress:
            note(f"[hsizoo shard-scenes] {spec}: {total} patches of {n_valid} valid pixels in "
                 f"{len(sizes)} shard(s)")
    _write_index(out, index)
    return dict(index, written=written, skipped=skipped)
