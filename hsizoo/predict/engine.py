"""Whole-scene prediction with per-pixel work shared between overlapping patches.

A patch model classifies pixel (r, c) from the P x P patch around it, so naive whole-scene
inference canonicalises and embeds every pixel about P x P times (once per patch that contains
it). S2Former's first steps are per-pixel linear maps: the spectral resampling onto the canonical
grid and the spatial branch's ``pixel_embed``. :class:`SharedPredictor` applies them once to every
pixel of a window (as 1 x 1 maps over the padded window), then gathers the P x P token patches by
index; only the transformer blocks run per patch (DESIGN.md, "Efficiency"). The blocks run as
:mod:`hsizoo.predict.fused` rewrites them for inference (fused projections, only the spectral
groups the sensor covers, only the centre pixel where the head reads nothing else). The result
equals ``model(x)`` on the gathered patches to float rounding (tests check 1e-5).

Scenes larger than memory stream through :func:`predict_scene` window by window (a halo of
P // 2 pixels around each window), invalid pixels are skipped (class 0), and the class map is
written window by window.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from hsizoo.data.patches import gather_patches, prepare_cube
from hsizoo.method.smoothing import smooth_probabilities, smoothing_radius
from hsizoo.spectral.grid import BandStats

__all__ = ["ClassMap", "SharedPredictor", "predict_naive", "predict_scene",
           "smooth_probabilities", "smoothing_radius"]

# On a CPU, forward passes take at most this many patches: the activations of 256 patches of
# s2former_tiny (a few MB) stay in cache: 256-patch passes took 1.3x less time than 1024-patch
# ones (s2former_tiny, CPU time per pixel on one core). GPUs take ``batch_size`` whole.
CPU_BATCH = 256


class SharedPredictor:
    """Batched S2Former inference that embeds each pixel once per window.

    Args:
        model: An S2Former with a classification head (or ``num_classes=0`` for features).
        wavelengths: Band centres (nm) of the data.
        batch_size: Patches per forward pass of the blocks (at most :data:`CPU_BATCH` on a
            CPU).
        precision: ``"fp32"`` (default), ``"bf16"`` or ``"fp16"`` (GPU only): the autocast of
            the forward passes (:mod:`hsizoo.runtime.device`); outputs are float32 either way.
        fused: Run the blocks the fused way (:mod:`hsizoo.predict.fused`) when the model allows
            it; False runs the model's own blocks (the reference the tests compare with).
        cpu_workers: On a CPU, forward passes run on this many Python threads of one torch
            thread each (:mod:`hsizoo.predict.parallel`); None = torch's thread count at the
            time of the call, 1 = in the calling thread with torch's intra-op threads. The
            outputs are the same for every number of workers.
    """

    def __init__(self, model: torch.nn.Module, wavelengths: Sequence[float],
                 batch_size: int = 1024, precision: str | None = "fp32",
                 fused: bool = True, cpu_workers: int | None = None) -> None:
        from hsizoo.runtime.device import resolve_precision

        self.model = model
        # Inputs go to the model's device; outputs come back to the CPU.
        self.device = next(model.parameters()).device
        self.precision = resolve_precision(precision, self.device)
        self.wavelengths = np.asarray(wavelengths, dtype=np.float64)
        self.batch_size = int(batch_size)
        self.fused = bool(fused)
        if cpu_workers is not None and int(cpu_workers) < 1:
            raise ValueError(f"cpu_workers={cpu_workers}: give 1 or more threads, or None for "
                             "torch's thread count.")
        self.cpu_workers = None if cpu_workers is None else int(cpu_workers)
        self.P = int(model.patch_size)

    @torch.inference_mode()
    def embed_window(self, padded: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-pixel work for a padded window (bands, Hp, Wp), done once.

        Returns:
            Canonical values (G, Hp, Wp), pixel tokens (Hp, Wp, D) without positions, and the
            canonical presence (G,).
        """
        m = self.model
        xc, present = m.canonicalize(padded[None], self.wavelengths)  # (1, G, Hp, Wp)
        xc = xc[0]
        tok = m.pixel_embed(rearrange(xc, "g h w -> h w g"))
        tok = tok + m.presence_embed(present.to(tok.dtype))
        return xc, tok, present

    @torch.inference_mode()
    def forward_indices(self, xc: torch.Tensor, tok: torch.Tensor, present: torch.Tensor,
                        rows: torch.Tensor, cols: torch.Tensor, pre_logits: bool = False
                        ) -> torch.Tensor:
        """Logits (or pooled features) of the patches centred on (rows, cols) of the unpadded grid.

        Args:
            xc: Canonical values of the padded window from :meth:`embed_window`.
            tok: Pixel tokens of the padded window.
            present: Canonical presence.
            rows: (N,) row indices (unpadded window coordinates).
            cols: (N,) column indices.
            pre_logits: Return pooled features instead of logits.

        Returns:
            (N, num_classes) logits, or (N, head_hidden_size) features.
        """
        return self._forward(self._window(xc, tok, present), rows, cols, pre_logits)

    def _window(self, xc: torch.Tensor, tok: torch.Tensor, present: torch.Tensor
                ) -> dict[str, Any]:
        """What every batch of one window reads: the embedded window, and the fused encoder with
        its spectral values when the model can run fused."""
        from hsizoo.predict.fused import FusedS2Former

        state: dict[str, Any] = dict(xc=xc, tok=tok, present=present, fused=None)
        if self.fused:
            state["fused"] = fused = FusedS2Former.from_model(self.model, present)
            if fused is not None:
                state["source"] = fused.spectral_source(xc)
        return state

    @torch.inference_mode()
    def _forward(self, state: dict[str, Any], rows: torch.Tensor, cols: torch.Tensor,
                 pre_logits: bool) -> torch.Tensor:
        m, P = self.model, self.P
        tok, fused = state["tok"], state["fused"]
        off = torch.arange(P, device=rows.device)
        rr = (rows[:, None] + off[None, :])[:, :, None]  # (N, P, 1) in padded coordinates
        cc = (cols[:, None] + off[None, :])[:, None, :]  # (N, 1, P)
        # One index op gathers the token patches; positions are added in place.
        sp = tok[rr, cc].flatten(1, 2)
        if sp.dtype == m.pos_embed.dtype:
            sp += m.pos_embed
        else:  # autocast: low-precision tokens, float32 positions, as model(x) adds them
            sp = sp + m.pos_embed
        if fused is not None:
            se = fused.embed_spectral(state["source"], state["present"], rows, cols)
            feats = m.head_drop(fused.pooled(sp, se))
            return feats if pre_logits else m.head(feats)
        xc, present = state["xc"], state["present"]
        c = m.center_size
        o = (P - c) // 2
        centre = xc[:, rr[:, o:o + c], cc[:, :, o:o + c]]  # (G, N, c, c)
        se = self._embed_centre(rearrange(centre, "g n h w -> n g h w"), present)
        sp, se, gp = m.encode(sp, se, m.group_presence(present))
        # forward_head's centre pooling, read from the tokens without building the whole map.
        feats = m.head_drop(m.pool_tokens(sp, se, gp))
        return feats if pre_logits else m.head(feats)

    def _embed_centre(self, centre: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """S2Former.embed_spectral on the c x c centres directly (no P x P patch needed)."""
        m = self.model
        pad = m.num_groups * m.group_size - centre.shape[1]
        centre = F.pad(centre, (0, 0, 0, 0, 0, pad))
        vals = rearrange(centre, "b (n s) h w -> b n (s h w)", s=m.group_size)
        pres = F.pad(present, (0, pad)).to(vals.dtype).view(1, m.num_groups, m.group_size)
        vals = torch.cat([vals, pres.expand(vals.shape[0], -1, -1)], dim=-1)
        return m.group_embed(vals) + m.wl_embed.to(vals.dtype)

    @torch.inference_mode()
    def predict_padded(self, padded: torch.Tensor, rows: np.ndarray, cols: np.ndarray,
                       pre_logits: bool = False, progress: Any = None) -> torch.Tensor:
        """Outputs for pixels (rows, cols) of a :func:`~hsizoo.data.patches.prepare_cube` tensor.

        Args:
            padded: (bands, H + 2r, W + 2r) standardised, padded window.
            rows: (N,) row indices in the unpadded window.
            cols: (N,) column indices.
            pre_logits: Return pooled features instead of logits.
            progress: Optional tqdm bar, advanced by the number of pixels done.

        Returns:
            (N, K) logits (or features), float32.
        """
        from hsizoo.predict.parallel import map_batches
        from hsizoo.runtime.device import autocast

        was_training = self.model.training
        self.model.eval()
        try:
            with autocast(self.device, self.precision):
                embedded = self.embed_window(padded.to(self.device))
            state = self._window(*embedded)  # weights folded in float32, outside autocast
            rows_t = torch.as_tensor(np.asarray(rows), dtype=torch.long, device=self.device)
            cols_t = torch.as_tensor(np.asarray(cols), dtype=torch.long, device=self.device)
            cpu = self.device.type == "cpu"
            step = min(self.batch_size, CPU_BATCH) if cpu else self.batch_size
            workers = (self.cpu_workers or torch.get_num_threads()) if cpu else 1

            def one_pass(i: int) -> torch.Tensor:
                # autocast and inference mode are per thread: entered here, in the worker.
                with torch.inference_mode(), autocast(self.device, self.precision):
                    o = self._forward(state, rows_t[i:i + step], cols_t[i:i + step], pre_logits)
                o = o.float().cpu()
                if progress is not None:
                    progress.update(int(o.shape[0]))
                return o

            out = map_batches(one_pass, range(0, rows_t.numel(), step), workers)
            if not out:
                dim = self.model.head_hidden_size if pre_logits else self.model.num_classes
                return torch.zeros(0, dim)
            return torch.cat(out)
        finally:
            self.model.train(was_training)


@torch.inference_mode()
def predict_naive(model: torch.nn.Module, padded: torch.Tensor, rows: np.ndarray,
                  cols: np.ndarray, wavelengths: Sequence[float], batch_size: int = 1
                  ) -> torch.Tensor:
    """Reference path: gather each P x P patch and run ``model(x)`` (batch 1 by default).

    Used by the tests (equality) and the speed benchmark (the baseline).

    Returns:
        (N, K) logits.
    """
    model.eval()
    P = model.patch_size
    out = []
    for i in range(0, len(rows), batch_size):
        x = gather_patches(padded, rows[i:i + batch_size], cols[i:i + batch_size], P)
        out.append(model(x, wavelengths))
    return torch.cat(out) if out else torch.zeros(0, model.num_classes)


@dataclass
class ClassMap:
    """A predicted class map on a scene's grid.

    Attributes:
        class_map: (H, W) class ids, 0 = unclassified (invalid pixels), 1..K.
        probabilities: (H, W, K) float32 per-pixel class probabilities (0 on invalid pixels), or
            None when prediction was streamed to disk.
        confidence: (H, W) float32 probability of the predicted class (NaN on invalid pixels).
        class_names: Names of classes 1..K.
        crs: The scene's CRS, or None.
        transform: The scene's affine transform, or None.
        scene: The scene predicted (for quicklooks), when held in memory.
        seconds: Wall-clock time of the prediction.
        path: Where the class map was written (streamed prediction), else None.
    """

    class_map: np.ndarray | None
    probabilities: np.ndarray | None
    confidence: np.ndarray | None
    class_names: list[str]
    crs: Any = None
    transform: Any = None
    scene: Any = None
    seconds: float = 0.0
    path: str | None = None
    meta: dict = field(default_factory=dict)

    def save(self, path: str | Path, *, overwrite: bool = False,
             confidence_path: str | Path | None = None, quicklook: str | Path | None = None
             ) -> Path:
        """Write the class map as a colour-mapped GeoTIFF on the scene's grid.

        Args:
            path: Output .tif.
            overwrite: Replace an existing file (otherwise FileExistsError).
            confidence_path: Also write the confidence map here.
            quicklook: Also write a quicklook PNG here.

        Returns:
            The path written.
        """
        from hsizoo.io import write_class_map, write_confidence_map
        from hsizoo.io.atomic import check_output
        from hsizoo.io.commit import commit_together

        if self.class_map is None:
            raise ValueError("This class map was streamed to disk; it is at "
                             f"{self.path}. Predict with an in-memory scene to save it again.")
        # Every output checked before the first is written (each write checks again).
        for extra in (confidence_path, quicklook):
            if extra is not None:
                check_output(extra, overwrite=overwrite)
        # The map, its confidence and the quicklook are one result: all replaced, or none.
        with commit_together():
            out = write_class_map(path, self.class_map, crs=self.crs, transform=self.transform,
                                  class_names=self.class_names, overwrite=overwrite)
            if confidence_path is not None and self.confidence is not None:
                write_confidence_map(confidence_path, self.confidence, crs=self.crs,
                                     transform=self.transform, overwrite=overwrite)
            if quicklook is not None:
                self.save_quicklook(quicklook, overwrite=overwrite)
        return out

    def save_quicklook(self, path: str | Path, *, overwrite: bool = False,
                       title: str | None = None) -> Path:
        """Write a PNG: the scene's colour composite beside the class map."""
        from hsizoo.io import save_quicklook

        if self.scene is None or self.class_map is None:
            raise ValueError("A quicklook needs the scene in memory; predict an in-memory Scene.")
        return save_quicklook(path, self.scene, self.class_map, self.class_names, title=title,
                              overwrite=overwrite)

    def evaluate(self, labels: np.ndarray) -> Any:
        """OA, AA, kappa, per-class accuracy and confusion matrix against a label map."""
        from hsizoo.data.metrics import evaluate

        if self.class_map is None:
            raise ValueError("This class map was streamed to disk; read it back to evaluate it.")
        return evaluate(labels, self.class_map, num_classes=len(self.class_names),
                        class_names=self.class_names)


def _progress(total: int, enabled: bool, desc: str) -> Any:
    from hsizoo.runtime.progress import progress_bar

    return progress_bar(total=total, disable=not enabled, desc=desc, unit="px", unit_scale=True,
                leave=False)


def _blocks(scene: Any, window_size: int, halo: int, nodata: float | None,
            rows: tuple[int, int] | None = None) -> Iterator[Any]:
    from hsizoo.io import iter_windows

    if rows is not None:
        return scene.windows(window_size, halo=halo, on_empty="skip", rows=rows)
    return iter_windows(scene, window_size, halo=halo, nodata=nodata, on_empty="skip")


def predict_scene(model: torch.nn.Module, scene: Any, stats: BandStats,
                  wavelengths: Sequence[float] | None = None, class_names: Sequence[str] | None
                  = None, *, window_size: int = 256, batch_size: int = 1024,
                  out_path: str | Path | None = None, confidence_path: str | Path | None = None,
                  overwrite: bool = False, keep_probabilities: bool | None = None,
                  nodata: float | None = None, smooth_sigma: float = 0.0,
                  progress: bool = True, precision: str | None = "fp32",
                  rows: tuple[int, int] | None = None) -> ClassMap:
    """Classify every valid pixel of a scene, window by window.

    Args:
        model: S2Former with a head of K classes.
        scene: An in-memory :class:`~hsizoo.io.Scene`, or the path of a raster (GeoTIFF, ENVI),
            read window by window so that memory stays bounded.
        stats: Band statistics used to standardise the data (those of the fine-tuning scene).
        wavelengths: Band centres in nm; default the scene's.
        class_names: Names of classes 1..K; default "class k".
        window_size: Core window side in pixels; memory grows with its square.
        batch_size: Patches per forward pass.
        out_path: Write the class map here as a GeoTIFF, window by window.
        confidence_path: Write the confidence map here too.
        overwrite: Replace existing output files.
        keep_probabilities: Keep the (H, W, K) probabilities in memory; default True for in-memory
            scenes, False for paths (streaming).
        nodata: Nodata value overriding the file's.
        smooth_sigma: Spatial regularisation of the probabilities (:func:`smooth_probabilities`);
            windows are read and predicted with a margin of its radius, so a streamed result
            equals the in-memory one. 0 turns it off.
        progress: Show a progress bar.
        precision: Autocast of the forward passes: ``"fp32"`` (default), ``"bf16"``, or
            ``"fp16"`` on a GPU. The model computes where its weights are.
        rows: In-memory scenes only: classify rows ``rows[0]:rows[1]`` and use the others as
            context (the patches' and the smoothing's margins), as a worker does with its band
            of a larger scene (:mod:`hsizoo.predict.campaign`). The maps keep the scene's shape;
            other rows stay unclassified. None: every row.

    Returns:
        A :class:`ClassMap`. When streaming from a path with ``out_path`` and
        ``keep_probabilities=False``, ``class_map`` is None and the map lives only on disk.
    """
    from hsizoo.io import Scene, open_class_map_writer, open_confidence_map_writer, read_scene_info
    from hsizoo.io.commit import commit_together, refuse_inputs_as_outputs
    from hsizoo.io.validity import flat_spectra, flat_spectra_message

    t0 = time.perf_counter()
    K = int(model.num_classes)
    names = list(class_names) if class_names is not None else [f"class {i + 1}" for i in range(K)]
    if len(names) != K:
        raise ValueError(f"{len(names)} class names for a model with {K} classes.")
    in_memory = isinstance(scene, Scene)
    where = (getattr(scene, "path", None) or "(in memory)") if in_memory else scene
    refuse_inputs_as_outputs([("out_path", out_path, ()), ("confidence_path", confidence_path, ())],
                             [("the scene", getattr(scene, "path", None) if in_memory else scene)])
    if rows is not None and not in_memory:
        raise ValueError("rows= needs an in-memory Scene; read the rows and a margin of the "
                         "patch and smoothing radii with read_scene(..., window=) first.")
    if in_memory:
        H, W, B = scene.shape
        crs, transform = scene.crs, scene.transform
        wl = scene.wavelengths if wavelengths is None else wavelengths
    else:
        info = read_scene_info(scene, wavelengths=wavelengths, nodata=nodata)
        H, W, B = info.height, info.width, info.num_bands
        crs, transform, wl = info.crs, info.transform, info.wavelengths
    if stats.mean.shape[0] != B:
        raise ValueError(f"The scene has {B} bands but the model was fine-tuned on data with "
                         f"{stats.mean.shape[0]} bands; predict scenes of the same sensor.")
    keep = in_memory if keep_probabilities is None else keep_probabilities
    keep_map = keep or out_path is None
    class_map = np.zeros((H, W), dtype=np.uint8 if K < 256 else np.uint16) if keep_map else None
    conf = np.full((H, W), np.nan, dtype=np.float32) if keep_map else None
    probs = np.zeros((H, W, K), dtype=np.float32) if keep else None
    predictor = SharedPredictor(model, wl, batch_size, precision)
    P = predictor.P
    writers: list[Any] = []
    if out_path is not None:
        writers.append(open_class_map_writer(out_path, H, W, crs=crs, transform=transform,
                                             class_names=names, overwrite=overwrite))
    if confidence_path is not None:
        writers.append(open_confidence_map_writer(confidence_path, H, W, crs=crs,
                                                  transform=transform, overwrite=overwrite))
    if rows is not None:
        total = int(scene.valid[rows[0]:rows[1]].sum())
    else:
        total = int(scene.valid.sum()) if in_memory else H * W
    bar = _progress(total, progress, "predict")
    counted = 0
    try:
        m = smoothing_radius(smooth_sigma)
        for block in _blocks(scene, window_size, P // 2 + m, nodata, rows):
            core_valid = block.crop(block.valid)
            fills = flat_spectra(block.crop(block.cube), core_valid)
            if fills:  # an undeclared fill value: refused, not classified (nothing is kept)
                raise ValueError(flat_spectra_message(fills, where))
            x = stats.apply(block.cube)
            padded = prepare_cube(x, block.valid, P)
            r0, c0 = block.core[0].start, block.core[1].start
            h, w = core_valid.shape
            # Pixels to classify: the core, plus a margin of the smoothing radius around it.
            ra, ca = max(0, r0 - m), max(0, c0 - m)
            rb, cb = min(block.valid.shape[0], r0 + h + m), min(block.valid.shape[1], c0 + w + m)
            region_valid = block.valid[ra:rb, ca:cb]
            gr, gc = np.nonzero(region_valid)
            # Without a margin the bar advances batch by batch; with one, window by window.
            logits = predictor.predict_padded(padded, gr + ra, gc + ca,
                                              progress=None if m else bar)
            p_all = torch.softmax(logits.float(), dim=1).numpy()
            vr, vc = np.nonzero(core_valid)
            if m:
                grid = np.zeros(region_valid.shape + (K,), dtype=np.float32)
                grid[gr, gc] = p_all
                grid = smooth_probabilities(grid, region_valid, smooth_sigma)
                p_core = grid[vr + r0 - ra, vc + c0 - ca]
            else:
                p_core = p_all
            if m:
                bar.update(int(vr.size))
            p = torch.from_numpy(np.ascontiguousarray(p_core))
            cmax, arg = p.max(1)
            h, w = core_valid.shape
            cm_blk = np.zeros((h, w), dtype=np.uint8 if K < 256 else np.uint16)
            cf_blk = np.full((h, w), np.nan, dtype=np.float32)
            cm_blk[vr, vc] = arg.numpy() + 1
            cf_blk[vr, vc] = cmax.numpy()
            win = block.window
            rs = slice(int(win.row_off), int(win.row_off + win.height))
            cs = slice(int(win.col_off), int(win.col_off + win.width))
            if class_map is not None:
                class_map[rs, cs] = cm_blk
                conf[rs, cs] = cf_blk
            if probs is not None:
                probs[rs.start + vr, cs.start + vc] = p.numpy()
            if out_path is not None:
                writers[0].write(win, cm_blk)
            if confidence_path is not None:
                writers[-1].write(win, cf_blk)
            if not in_memory:
                bar.update(int(h * w - vr.size))
            counted += h * w
        if not in_memory and counted < total:
            # Windows without a valid pixel were skipped; the bar counts their pixels too.
            bar.update(total - counted)
    except BaseException:
        for wr in writers:
            wr.abort()
        raise
    finally:
        bar.close()
    # Windows with no valid pixel were skipped; GDAL fills never-written GeoTIFF blocks with the
    # nodata value when the file is closed, so they read back as unclassified / NaN. The class
    # and confidence maps replace their targets together, or neither does.
    try:
        with commit_together():
            for wr in writers:
                wr.close()
    finally:
        for wr in writers:  # when one fails, the others leave no partial file either
            wr.abort()
    return ClassMap(class_map=class_map, probabilities=probs, confidence=conf,
                    class_names=names, crs=crs, transform=transform,
                    scene=scene if in_memory else None, seconds=time.perf_counter() - t0,
                    path=None if out_path is None else str(out_path))

