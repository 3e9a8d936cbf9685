"""Maps of many scenes on many workers: units, shares, parts, assembly, mosaics, manifests.

A campaign is a list of scene files and one fine-tuned model. The work is cut into *units*, a
scene x a band of rows sized so that a unit reads at most ``max_unit_mb`` of the scene, in one
deterministic order that depends only on the scenes (not on the number of workers). Worker ``r``
of ``N`` takes units ``r, r + N, r + 2N, ...``: no duplicates, no padding. Under torchrun the
rank and world come from the process group (gloo on CPUs, NCCL on GPUs); ``--shard I/N`` gives
the same shares to the jobs of any scheduler (SLURM arrays, AWS Batch) with no process group.

Nothing is lost and nothing done twice:

* each unit's class probabilities are written to a hidden partial file and renamed into
  ``DIR/.hsizoo-parts/<stem>-<model>/<rows>.npz``; a rerun skips units whose part exists and
  scenes whose map exists, so after a killed worker only the missing units are redone;
* a scene whose parts are all there is assembled by exactly one worker (an exclusive lock file;
  a dead worker's lock on this host is taken over) into ``DIR/<stem>.tif``, a Cloud-Optimized
  GeoTIFF on the scene's grid (and ``DIR/<stem>_confidence.tif`` when asked), then its parts
  are removed;
* when every scene is mapped, one VRT mosaic per CRS is written (``mosaic.vrt``, or
  ``mosaic_<crs>.vrt`` for several CRSs);
* each worker writes its manifest ``DIR/manifests/<run id>/worker-<r>-of-<N>.json``: the units
  it computed, the scenes it assembled, what it skipped.

A unit classifies exactly its rows (read with a margin of the patch radius); the spatial
smoothing runs at assembly over the scene's parts, band by band with the smoothing radius of the
neighbouring rows. So the map of a scene is the same (bit for bit) whatever the number of
workers and units, and small units cost no extra compute: shares stay even.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from hsizoo.predict.units import Unit, parse_shard, plan_units, rmdir_if_empty, take_lock

__all__ = ["Campaign", "Unit", "parse_shard", "plan_units"]

PARTS = ".hsizoo-parts"
#: Tag of a campaign's maps naming the fingerprint of the model that made them.
MODEL_TAG = "HSIZOO_MODEL_FINGERPRINT"


def _fingerprint(ft: Any) -> str:
    """Short digest of a fitted model's weights and classes: parts of another model never mix."""
    h = hashlib.sha256(json.dumps(list(ft.class_names)).encode())
    for k, v in sorted(ft.model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().float().cpu().numpy().tobytes())
    h.update(np.asarray(ft.stats.mean, np.float64).tobytes())
    return h.hexdigest()[:12]


@dataclass
class Campaign:
    """One model over many scenes, shared between workers (see the module docstring).

    Attributes:
        finetuned: A :class:`~hsizoo.finetune.FineTuned` (``load_finetuned(folder)``).
        scenes: Scene files (GeoTIFF, ENVI); their file stems name the outputs, so they must
            differ.
        out_dir: Where the maps, mosaics and manifests go.
        confidence: Also write confidence maps (and their mosaics).
        overwrite: Recompute scenes whose map already exists.
        max_unit_mb: Pixels one unit reads (MiB of float32); see :func:`plan_units`.
        min_unit_rows: Fewest rows per unit.
        wavelengths, sensor: For scenes whose files do not carry wavelengths.
        progress: Show a progress bar over this worker's units.
        run_id: Names the manifests' folder (default: torchrun's run id, the scheduler's job
            id, else the start time).
    """

    finetuned: Any
    scenes: Sequence[str | Path]
    out_dir: str | Path
    confidence: bool = False
    overwrite: bool = False
    max_unit_mb: float = 16.0
    min_unit_rows: int = 16
    wavelengths: Sequence[float] | None = None
    sensor: str | None = None
    progress: bool = True
    run_id: str | None = None
    _infos: list[Any] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        from hsizoo.io import read_scene_info

        self.out_dir = Path(self.out_dir)
        self.scenes = [Path(s) for s in self.scenes]
        stems: dict[str, Path] = {}
        for s in self.scenes:
            if s.stem in stems:
                raise ValueError(f"{stems[s.stem]} and {s} would both be mapped to "
                                 f"{self.out_dir / (s.stem + '.tif')}; give scenes distinct "
                                 "file names (or map them into different --out-dir folders).")
            stems[s.stem] = s
        self._infos = [read_scene_info(s, wavelengths=self.wavelengths, sensor=self.sensor)
                       for s in self.scenes]
        from hsizoo.finetune.inputs import check_coverage
        from hsizoo.finetune.result import _compare_wavelengths

        for info in self._infos:  # once per scene, before any unit is computed
            wl = np.asarray(info.wavelengths, float)
            check_coverage(self.finetuned.model, wl)
            _compare_wavelengths(wl, self.finetuned.wavelengths)
        self.run_id = self.run_id or os.environ.get("TORCHELASTIC_RUN_ID") \
            or os.environ.get("SLURM_JOB_ID") or os.environ.get("AWS_BATCH_JOB_ID") \
            or time.strftime("%Y%m%d-%H%M%S")
        self.fingerprint = _fingerprint(self.finetuned)
        self._check_existing_maps()
        self.units = plan_units([(s.stem, i.height, i.width, i.num_bands)
                                 for s, i in zip(self.scenes, self._infos)], self.max_unit_mb,
                                self.min_unit_rows)

    # ------------------------------------------------------------------ paths
    def map_path(self, scene: int) -> Path:
        return self.out_dir / f"{self.scenes[scene].stem}.tif"

    def confidence_path(self, scene: int) -> Path:
        return self.out_dir / f"{self.scenes[scene].stem}_confidence.tif"

    def parts_dir(self, scene: int) -> Path:
        return self.out_dir / PARTS / f"{self.scenes[scene].stem}-{self.fingerprint}"

    def _check_existing_maps(self) -> None:
        """Refuse to keep maps in ``out_dir`` that another model made (a rerun would otherwise
        count them as done and leave them, stale, under the new model's name)."""
        if self.overwrite:
            return
        import rasterio

        for i in range(len(self.scenes)):
            for path in (self.map_path(i), self.confidence_path(i)):
                if not path.is_file():
                    continue
                with rasterio.open(path) as ds:
                    made_by = ds.tags().get(MODEL_TAG)
                if made_by != self.fingerprint:
                    by = (f"another model (fingerprint {made_by})" if made_by else
                          "a model hsizoo cannot identify (no fingerprint tag)")
                    raise FileExistsError(
                        f"{path} already exists and was made by {by}, not by this model "
                        f"(fingerprint {self.fingerprint}). Pass --overwrite (Campaign("
                        "overwrite=True)) to map every scene again with this model, or choose "
                        "another --out-dir.")

    def done(self, scene: int) -> bool:
        """The scene's outputs exist (and are not to be overwritten)."""
        return not self.overwrite and self.map_path(scene).is_file() and (
            not self.confidence or self.confidence_path(scene).is_file())

    # ------------------------------------------------------------------ work
    def share(self, rank: int, world: int) -> list[Unit]:
        """This worker's units: every ``world``-th from ``rank``."""
        return self.units[rank::world]

    def predict_unit(self, unit: Unit) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities (rows, W, K), validity (rows, W)) of the unit's rows, unsmoothed.

        The rows are read with a margin of the patch radius, which gives their patches but is
        not classified; the smoothing needs the neighbouring units and runs in :meth:`assemble`.
        """
        from rasterio.windows import Window

        from hsizoo.io import Scene
        from hsizoo.io.raster import open_raster, read_block
        from hsizoo.io.validity import valid_mask
        from hsizoo.predict.engine import predict_scene

        ft, info = self.finetuned, self._infos[unit.scene]
        wl = np.asarray(info.wavelengths, float)
        halo = int(ft.model.patch_size) // 2
        ra, rb = max(0, unit.row0 - halo), min(info.height, unit.row1 + halo)
        path = self.scenes[unit.scene]
        with open_raster(path) as ds:
            cube = read_block(ds, path, Window(0, ra, info.width, rb - ra))
        scene = Scene(cube=cube, wavelengths=wl, valid=valid_mask(cube, info.nodata))
        rows = (unit.row0 - ra, unit.row1 - ra)
        res = predict_scene(ft.model, scene, ft.stats, None, ft.class_names, rows=rows,
                            smooth_sigma=0.0, keep_probabilities=True, progress=False,
                            precision=ft.precision)
        return res.probabilities[rows[0]:rows[1]], scene.valid[rows[0]:rows[1]]

    def _write_part(self, unit: Unit, probs: np.ndarray, valid: np.ndarray) -> None:
        from hsizoo.io.atomic import AtomicFile

        folder = self.parts_dir(unit.scene)
        folder.mkdir(parents=True, exist_ok=True)
        with AtomicFile(folder / unit.name, overwrite=True) as out, open(out.tmp, "wb") as f:
            np.savez(f, probabilities=probs.astype(np.float32, copy=False), valid=valid)

    def _part(self, unit: Unit) -> dict[str, np.ndarray] | None:
        p = self.parts_dir(unit.scene) / unit.name
        try:
            with np.load(p, allow_pickle=False) as z:
                part = {k: z[k] for k in ("probabilities", "valid")}
        except (OSError, ValueError, KeyError):
            return None  # missing or unreadable: the unit is (re)done
        w, K = self._infos[unit.scene].width, len(self.finetuned.class_names)
        if part["probabilities"].shape != (unit.row1 - unit.row0, w, K):
            return None  # not this unit's (a file of another hsizoo version)
        return part

    def assemble(self, scene: int) -> bool:
        """Write the scene's map(s) from its parts when all are there; True when written.

        The parts' probabilities are smoothed (the fine-tuned model's ``smooth_sigma``) band by
        band, each band with the rows of its neighbours within the smoothing radius, so the map
        equals the one :func:`~hsizoo.predict.engine.predict_scene` makes of the whole scene,
        and memory holds a few parts, not the scene's probabilities.
        """
        units = [u for u in self.units if u.scene == scene]
        if self.done(scene) or any(not (self.parts_dir(scene) / u.name).is_file() for u in units):
            return False
        lock = self.parts_dir(scene) / ".assembling"
        if not take_lock(lock):
            return False
        try:
            if self.done(scene):
                return False
            maps = self._smoothed_maps(scene, units)
            if maps is None:
                return False
            self._write_maps(scene, *maps)
        finally:
            lock.unlink(missing_ok=True)
        for u in units:
            (self.parts_dir(scene) / u.name).unlink(missing_ok=True)
        rmdir_if_empty(self.parts_dir(scene))
        return True

    def _smoothed_maps(self, scene: int, units: list[Unit]
                       ) -> tuple[np.ndarray, np.ndarray] | None:
        """(class map, confidence) from the parts; None (and the bad part dropped) if one is
        unreadable, so that a rerun redoes that unit."""
        import torch

        from hsizoo.method.smoothing import smooth_probabilities, smoothing_radius

        info, K = self._infos[scene], len(self.finetuned.class_names)
        sigma = float(self.finetuned.smooth_sigma or 0.0)
        m = smoothing_radius(sigma)
        cm = np.zeros((info.height, info.width), np.uint8 if K < 256 else np.uint16)
        cf = np.full((info.height, info.width), np.nan, np.float32)
        loaded: dict[int, dict[str, np.ndarray]] = {}
        for u in units:
            a, b = max(0, u.row0 - m), min(info.height, u.row1 + m)
            need = [j for j, v in enumerate(units) if v.row0 < b and v.row1 > a]
            for j in list(loaded):
                if j not in need:
                    del loaded[j]  # parts above the band are done with
            for j in need:
                if j not in loaded:
                    part = self._part(units[j])
                    if part is None:  # corrupt: drop it, a rerun redoes that unit
                        (self.parts_dir(scene) / units[j].name).unlink(missing_ok=True)
                        return None
                    loaded[j] = part
            lo = units[need[0]].row0
            probs = np.concatenate([loaded[j]["probabilities"] for j in need])[a - lo:b - lo]
            valid = np.concatenate([loaded[j]["valid"] for j in need])[a - lo:b - lo]
            core = slice(u.row0 - a, u.row1 - a)
            band = smooth_probabilities(probs, valid, sigma)[core]
            v = valid[core]
            best, arg = torch.from_numpy(np.ascontiguousarray(band[v])).max(1)
            rows_cm, rows_cf = cm[u.row0:u.row1], cf[u.row0:u.row1]
            rows_cm[v], rows_cf[v] = arg.numpy() + 1, best.numpy()
        return cm, cf

    def _write_maps(self, scene: int, cm: np.ndarray, cf: np.ndarray) -> None:
        from hsizoo.io.atomic import AtomicFile
        from hsizoo.io.commit import commit_together
        from hsizoo.io.legend import write_legend
        from hsizoo.io.mosaic import to_cog
        from hsizoo.io.writers import read_class_map_metadata, write_class_map, write_confidence_map

        info, names = self._infos[scene], list(self.finetuned.class_names)
        staging = self.parts_dir(scene)
        outputs = [(self.map_path(scene), True)]
        if self.confidence:
            outputs.append((self.confidence_path(scene), False))
        for target, categorical in outputs:
            tmp = staging / f".{target.name}"
            tmp.unlink(missing_ok=True)
            if categorical:
                # the COG driver builds the overviews; the legend is written beside the COG
                write_class_map(tmp, cm, crs=info.crs, transform=info.transform,
                                class_names=names, legend=False, overviews=False)
            else:
                write_confidence_map(tmp, cf, crs=info.crs, transform=info.transform)
            import rasterio

            with rasterio.open(tmp, "r+") as ds:  # the COG copy keeps the tag
                ds.update_tags(**{MODEL_TAG: self.fingerprint})
            try:
                with commit_together():  # the COG and its legend sidecar appear together
                    with AtomicFile(target, overwrite=True) as out:
                        out.tmp.unlink()  # GDAL's COG driver creates the file itself
                        to_cog(tmp, out.tmp, categorical=categorical)
                    if categorical:
                        meta = read_class_map_metadata(tmp)
                        write_legend(target, names, meta["colors"], int(meta["nodata"] or 0))
            finally:
                tmp.unlink(missing_ok=True)

    def run(self, rank: int = 0, world: int = 1, barrier: Callable[[], None] | None = None
            ) -> dict[str, Any]:
        """Do this worker's units, assemble finished scenes, write mosaics and the manifest.

        Args:
            rank, world: This worker's share (``rank`` of ``world``).
            barrier: Under a process group, waits for every worker; then each assembles its
                share of the scenes and rank 0 writes the mosaics. Without one, each worker
                assembles whatever is complete.

        Returns:
            The manifest written.
        """
        from hsizoo.runtime.progress import progress_bar

        self.out_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        manifest: dict[str, Any] = dict(run_id=self.run_id, rank=rank, world=world,
                                        host=socket.gethostname(), pid=os.getpid(),
                                        model=self.fingerprint, units=[], skipped=[],
                                        assembled=[], mosaics=[])
        mine = self.share(rank, world)
        for u in progress_bar(mine, disable=not self.progress, desc=f"units (worker {rank}/{world})"):
            if self.done(u.scene) or self._part(u) is not None:
                manifest["skipped"].append([u.stem, u.row0, u.row1])
                continue
            t = time.perf_counter()
            self._write_part(u, *self.predict_unit(u))
            manifest["units"].append(dict(scene=u.stem, rows=[u.row0, u.row1],
                                          seconds=round(time.perf_counter() - t, 3)))
        if barrier is not None:
            barrier()
        # Under a process group every worker assembles its share of the scenes; alone, a
        # worker assembles whatever is complete (each scene under its lock either way).
        share = range(len(self.scenes))
        for i in share if barrier is None else share[rank::world]:
            if self.assemble(i):
                manifest["assembled"].append(self.scenes[i].stem)
        if barrier is not None:
            barrier()
        if barrier is None or rank == 0:
            manifest["mosaics"] = [str(p) for p in self.write_mosaics()]
        manifest["seconds"] = round(time.perf_counter() - t0, 3)
        self._write_manifest(manifest)
        if barrier is not None:
            barrier()
        return manifest

    def write_mosaics(self) -> list[Path]:
        """One VRT per CRS over the scenes, once every scene is mapped (else nothing)."""
        from hsizoo.io.mosaic import write_vrt_mosaics

        if not all(self.map_path(i).is_file() for i in range(len(self.scenes))):
            return []
        lock = self.out_dir / PARTS / ".mosaic"
        lock.parent.mkdir(parents=True, exist_ok=True)
        if not take_lock(lock):
            return []
        try:
            maps = [self.map_path(i) for i in range(len(self.scenes))]
            out = write_vrt_mosaics(maps, self.out_dir, "mosaic")
            if self.confidence:
                out += write_vrt_mosaics([self.confidence_path(i) for i in
                                          range(len(self.scenes))], self.out_dir,
                                         "confidence_mosaic")
        finally:
            lock.unlink(missing_ok=True)
        rmdir_if_empty(self.out_dir / PARTS)
        return out

    def _write_manifest(self, manifest: dict[str, Any]) -> Path:
        from hsizoo.io.atomic import AtomicFile

        folder = self.out_dir / "manifests" / str(self.run_id)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"worker-{manifest['rank']}-of-{manifest['world']}.json"
        with AtomicFile(target, overwrite=True) as out:
            out.tmp.write_text(json.dumps(manifest, indent=1) + "\n")
        return target


def map_scenes(model: str | Path, scenes: Sequence[str | Path], out_dir: str | Path, *,
               shard: str | None = None, device: str | None = None,
               precision: str | None = None, threads: int | None = None,
               **campaign: Any) -> dict[str, Any]:
    """Map scenes with a fine-tuned model folder as one worker of a campaign.

    Under torchrun (``WORLD_SIZE`` > 1) this process joins the process group (gloo on CPUs,
    NCCL on GPUs) and takes its rank's share; with ``shard="I/N"`` it takes share I of N with no
    process group (a scheduler's array job); else it does everything.

    Args:
        model: A folder written by ``FineTuned.save_pretrained``.
        scenes: Scene files.
        out_dir: Output folder.
        shard: ``"I/N"``, or None.
        device: ``"cuda"``, ``"cpu"`` or None (the GPU of this rank when there is one).
        precision: Autocast of the forward passes; None = the model's.
        threads: Torch threads of this worker; None: usable cores // ranks on this machine
            under torchrun, else torch's default (:func:`hsizoo.runtime.distributed.worker_threads`).
        **campaign: More :class:`Campaign` settings (confidence, overwrite, max_unit_mb, ...).

    Returns:
        This worker's manifest.
    """
    import torch.distributed as dist

    from hsizoo.finetune.result import load_finetuned
    from hsizoo.runtime.device import resolve_device, resolve_precision
    from hsizoo.runtime.distributed import setup_distributed, worker_threads

    worker_threads(threads)
    if shard is not None:
        (rank, world), place = parse_shard(shard), None
        dev = resolve_device(device)
    else:
        place, dev = setup_distributed(device)
        rank, world = place.rank, place.world_size
    try:
        ft = load_finetuned(model)
        ft.model.to(dev)
        ft.precision = resolve_precision(precision or ft.precision, dev)
        job = Campaign(ft, scenes, out_dir, **campaign)
        barrier = dist.barrier if place is not None and world > 1 else None
        return job.run(rank, world, barrier)
    finally:
        if place is not None and place.initialised_here:
            dist.destroy_process_group()
