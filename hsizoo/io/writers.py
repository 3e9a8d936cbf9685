"""Writing class and confidence maps as georeferenced GeoTIFFs, window by window.

Maps are tiled (256 x 256), DEFLATE-compressed GeoTIFFs on the scene's grid (CRS and transform).
A class map is uint8 (uint16 beyond 255 classes) with 0 = unclassified as nodata, a colour table,
the class names in the metadata (``CLASS_NAMES`` as JSON, and ``CLASS_<id>`` per class) and, for
GIS software, as GDAL category names and a raster attribute table in the ``.aux.xml`` sidecar
(:mod:`hsizoo.io.legend`), committed with the map. Maps larger than one tile carry internal
overviews (mode of the classes, average of the confidences), so a GIS draws them zoomed out
without reading every pixel.

Writers work on a hidden partial file beside the target (:mod:`hsizoo.io.atomic`; its name does not
end in .tif) and move it into place only when the map is complete and read back, so an interrupted
or failed prediction never leaves a half-written map under the final name or any name that opens
as a map. The output location is checked when the writer opens, before any work.
"""
from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hsizoo.io.atomic import AtomicFile, check_output
from hsizoo.io.colors import UNCLASSIFIED_COLOR, check_colors, default_palette
from hsizoo.io.legend import sidecar_path, write_legend

_TILE = 256


def _profile(height: int, width: int, dtype: str, nodata: float | None, crs: Any,
             transform: Any) -> dict:
    profile = {
        "driver": "GTiff", "height": int(height), "width": int(width), "count": 1, "dtype": dtype,
        "nodata": nodata, "compress": "deflate", "predictor": 2 if dtype.startswith("uint") else 3,
        "BIGTIFF": "IF_SAFER",
    }
    # GDAL wants tiles that are multiples of 16; a map smaller than a tile is stored in strips.
    if height >= _TILE and width >= _TILE:
        profile.update(tiled=True, blockxsize=_TILE, blockysize=_TILE)
    if crs is not None:
        profile["crs"] = crs
    if transform is not None:
        profile["transform"] = transform
    return profile


def _verify_raster(path: Path, height: int, width: int, dtype: str) -> None:
    """Read a written single-band raster back whole; raise if it is not what was written."""
    import rasterio

    if path.stat().st_size == 0:
        raise OSError("the file is empty")
    with rasterio.Env(), rasterio.open(path) as ds:
        if (ds.height, ds.width, ds.count, ds.dtypes[0]) != (height, width, 1, dtype):
            raise OSError(f"read back as {ds.height} x {ds.width} x {ds.count} {ds.dtypes[0]}, "
                          f"not {height} x {width} x 1 {dtype}")
        for _, window in ds.block_windows(1):
            ds.read(1, window=window)  # every block must decode


def overview_factors(height: int, width: int) -> list[int]:
    """Overview levels 2, 4, 8, ... down to the first that fits in one tile (as GDAL's COG)."""
    factors, f = [], 2
    while max(height, width) / (f // 2) > _TILE:
        factors.append(f)
        f *= 2
    return factors


class _GridWriter:
    """A single-band GeoTIFF written window by window into a temporary file, then moved in place."""

    #: Resampling of the internal overviews (rasterio.enums.Resampling name), or None for none.
    overview_resampling: str | None = None

    def __init__(self, path: str | Path, height: int, width: int, dtype: str, nodata: float | None,
                 crs: Any, transform: Any, overwrite: bool) -> None:
        import rasterio
        from rasterio.errors import NotGeoreferencedWarning

        self.height, self.width, self.dtype = int(height), int(width), dtype
        if self.height < 1 or self.width < 1:
            raise ValueError(f"Map size must be at least 1 x 1, got {height} x {width}.")
        # Uncompressed size: an upper bound of what the compressed map needs.
        size = self.height * self.width * np.dtype(dtype).itemsize
        self.path = check_output(path, overwrite=overwrite, estimated_bytes=size)
        self._file = AtomicFile(self.path, overwrite=overwrite, verify=lambda p: _verify_raster(
            p, self.height, self.width, self.dtype))
        self._tmp = self._file.tmp
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                self._ds = rasterio.open(self._tmp, "w",
                                         **_profile(height, width, dtype, nodata, crs, transform))
        except BaseException:
            self._file.abort()
            raise
        self._closed = False

    def _check_window(self, window: Any, block: np.ndarray) -> tuple[Any, np.ndarray]:
        from rasterio.windows import Window

        if not isinstance(window, Window):
            row_off, col_off = window  # (row, col) of the block's top-left corner
            window = Window(col_off, row_off, block.shape[1], block.shape[0])
        block = np.asarray(block)
        if block.ndim != 2 or block.shape != (int(window.height), int(window.width)):
            raise ValueError(
                f"Block shape {block.shape} does not match the window "
                f"({int(window.height)} x {int(window.width)}); crop halo margins with "
                "WindowBlock.crop() before writing."
            )
        if (window.row_off < 0 or window.col_off < 0 or window.row_off + window.height > self.height
                or window.col_off + window.width > self.width):
            raise ValueError(
                f"Window rows {window.row_off}:{window.row_off + window.height}, cols "
                f"{window.col_off}:{window.col_off + window.width} lies outside the "
                f"{self.height} x {self.width} map."
            )
        return window, block

    def write(self, window: Any, block: np.ndarray) -> None:
        """Write one block of the map.

        Args:
            window: rasterio ``Window`` (or the (row, col) of the block's top-left pixel).
            block: (h, w) values for that window.
        """
        if self._closed:
            raise ValueError(f"The writer for {self.path} is closed.")
        window, block = self._check_window(window, block)
        self._ds.write(self._encode(block), 1, window=window)

    def _encode(self, block: np.ndarray) -> np.ndarray:
        return block.astype(self.dtype)

    def close(self) -> None:
        """Finish the map, check it, and only then move it to its final path.

        GDAL only logs some write errors (a full disk among them), so the finished file is
        flushed to disk and read back completely before it replaces anything: on any failure
        the partial file is removed, a previous map under the final name is left intact, and an
        :class:`~hsizoo.io.atomic.OutputError` says what happened. A file that another process
        created under the final name meanwhile is replaced only with ``overwrite``.
        """
        if self._closed:
            return
        self._closed = True
        try:
            self._build_overviews()
            self._ds.close()
        except Exception as err:
            self._file.abort()
            raise OSError(f"Writing {self.path} failed ({err}); nothing was written there and any "
                          "previous file under that name is unchanged. Check the free space "
                          "and permissions of the output folder.") from err
        self._file.commit()

    def _build_overviews(self) -> None:
        from rasterio.enums import Resampling

        factors = overview_factors(self.height, self.width)
        if self.overview_resampling is None or not factors:
            return
        self._ds.build_overviews(factors, getattr(Resampling, self.overview_resampling))
        self._ds.update_tags(ns="rio_overview", resampling=self.overview_resampling)

    def abort(self) -> None:
        """Discard the partial map."""
        if self._closed:
            return
        self._closed = True
        try:
            self._ds.close()
        finally:
            self._file.abort()

    def __enter__(self) -> "_GridWriter":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class ClassMapWriter(_GridWriter):
    """Streaming class-map writer; see :func:`open_class_map_writer`."""

    overview_resampling = "mode"  # the most frequent class of each block, never a blend of ids

    def __init__(self, path: str | Path, height: int, width: int, *, crs: Any, transform: Any,
                 class_names: Sequence[str], colors: Sequence[Sequence[int]] | None = None,
                 nodata: int = 0, overwrite: bool = False, legend: bool = True,
                 overviews: bool = True) -> None:
        names = [str(n) for n in class_names]
        if not names:
            raise ValueError("class_names is empty; give the names of classes 1..K.")
        k = len(names)
        dtype = "uint8" if k <= 255 else "uint16"
        if k > 65535:
            raise ValueError(f"{k} classes do not fit a uint16 class map (at most 65,535).")
        if not 0 <= nodata <= np.iinfo(dtype).max or 1 <= nodata <= k:
            raise ValueError(
                f"nodata={nodata} collides with a class id (1..{k}) or does not fit {dtype}; use 0 "
                "(the default, unclassified)."
            )
        self.class_names = names
        self.nodata = int(nodata)
        self.colors = check_colors(colors, k) if colors is not None else default_palette(k)
        self._legend, self._overwrite = legend, overwrite
        if not overviews:
            self.overview_resampling = None
        if legend:  # the sidecar is an output too: refused up front like the map
            check_output(sidecar_path(Path(path).expanduser()), overwrite=overwrite)
        super().__init__(path, height, width, dtype, nodata, crs, transform, overwrite)
        try:
            self._write_metadata()
        except Exception:
            self.abort()
            raise

    def _write_metadata(self) -> None:
        k = len(self.class_names)
        cmap = {self.nodata: (*UNCLASSIFIED_COLOR, 0)}
        cmap.update({i + 1: (*c, 255) for i, c in enumerate(self.colors)})
        if self.dtype == "uint8":
            cmap.update({i: (0, 0, 0, 0) for i in range(256) if i not in cmap})
        self._ds.write_colormap(1, cmap)
        tags = {"CLASS_NAMES": json.dumps(self.class_names), "NUM_CLASSES": str(k),
                "CLASS_0": "unclassified", "CLASS_COLORS": json.dumps(self.colors)}
        tags.update({f"CLASS_{i + 1}": n for i, n in enumerate(self.class_names)})
        self._ds.update_tags(**tags)
        self._ds.set_band_description(1, "class id (0 = unclassified)")

    def close(self) -> None:
        """Finish the map and its legend sidecar; both are renamed into place together."""
        if self._closed or not self._legend:
            super().close()
            return
        from hsizoo.io.commit import commit_together

        with commit_together():
            super().close()
            write_legend(self.path, self.class_names, self.colors, self.nodata,
                         overwrite=self._overwrite)

    def _encode(self, block: np.ndarray) -> np.ndarray:
        if not np.issubdtype(block.dtype, np.integer):
            if not np.all(block == np.round(block)):
                raise ValueError("Class map blocks must hold integer class ids.")
        if block.size:
            lo, hi = int(block.min()), int(block.max())
            if lo < 0 or hi > len(self.class_names):
                raise ValueError(
                    f"Class map holds class id {hi if hi > len(self.class_names) else lo} but only "
                    f"{len(self.class_names)} class names were given (valid ids: 0 = "
                    f"unclassified, 1..{len(self.class_names)}). Give one name per class."
                )
        return block.astype(self.dtype)


class ConfidenceMapWriter(_GridWriter):
    """Streaming confidence-map writer; see :func:`open_confidence_map_writer`."""

    overview_resampling = "average"

    def __init__(self, path: str | Path, height: int, width: int, *, crs: Any, transform: Any,
                 dtype: str = "float32", overwrite: bool = False) -> None:
        if dtype not in ("float32", "uint8"):
            raise ValueError(f"dtype must be 'float32' or 'uint8', got {dtype!r}.")
        # float32 keeps the value; uint8 stores round(conf * 254) with 255 = nodata and a
        # scale of 1/254 in the metadata, so GDAL-aware readers get back confidences in 0..1.
        nodata = float("nan") if dtype == "float32" else 255
        super().__init__(path, height, width, dtype, nodata, crs, transform, overwrite)
        if dtype == "uint8":
            self._ds.scales = (1.0 / 254.0,)
            self._ds.offsets = (0.0,)
        self._ds.set_band_description(1, "confidence (0..1)")
        self._ds.update_tags(CONFIDENCE_ENCODING="float32" if dtype == "float32" else
                             "uint8: value / 254, 255 = nodata")

    def _encode(self, block: np.ndarray) -> np.ndarray:
        conf = np.asarray(block, dtype=np.float32)
        finite = np.isfinite(conf)
        if finite.any() and (conf[finite].min() < 0 or conf[finite].max() > 1):
            raise ValueError("Confidences must lie in 0..1 (NaN marks nodata).")
        if self.dtype == "float32":
            return conf
        out = np.full(conf.shape, 255, dtype=np.uint8)
        out[finite] = np.round(conf[finite] * 254).astype(np.uint8)
        return out


def open_class_map_writer(path: str | Path, height: int, width: int, *, crs: Any, transform: Any,
                          class_names: Sequence[str], colors: Sequence[Sequence[int]] | None = None,
                          nodata: int = 0, overwrite: bool = False, legend: bool = True,
                          overviews: bool = True) -> ClassMapWriter:
    """Open a class-map GeoTIFF to be written window by window (use as a context manager).

    The map appears under ``path`` only when the ``with`` block ends without an error.

    Args:
        path: Output GeoTIFF path.
        height: Rows of the map (the scene's).
        width: Columns of the map.
        crs: The scene's CRS (None for a non-georeferenced scene).
        transform: The scene's affine transform (None for a non-georeferenced scene).
        class_names: Names of classes 1..K.
        colors: One (r, g, b) per class, or None for the default palette.
        nodata: Id stored for unclassified pixels; 0.
        overwrite: Replace an existing file.
        legend: Write the GDAL legend sidecar ``<path>.aux.xml`` (category names and raster
            attribute table, :mod:`hsizoo.io.legend`) with the map.
        overviews: Build internal overviews (mode resampling) when the map exceeds one tile.

    Returns:
        A writer with ``.write(window, block)`` and ``.close()``.

    Example:
        >>> with open_class_map_writer("map.tif", h, w, crs=scene.crs,   # doctest: +SKIP
        ...                            transform=scene.transform, class_names=names) as out:
        ...     for block in iter_windows("scene.tif", 512, halo=4):
        ...         out.write(block.window, block.crop(predict(block.cube)))
    """
    return ClassMapWriter(path, height, width, crs=crs, transform=transform,
                          class_names=class_names, colors=colors, nodata=nodata,
                          overwrite=overwrite, legend=legend, overviews=overviews)


def open_confidence_map_writer(path: str | Path, height: int, width: int, *, crs: Any,
                               transform: Any, dtype: str = "float32",
                               overwrite: bool = False) -> ConfidenceMapWriter:
    """Open a confidence-map GeoTIFF to be written window by window (use as a context manager).

    Args:
        path: Output GeoTIFF path.
        height: Rows of the map.
        width: Columns of the map.
        crs: The scene's CRS, or None.
        transform: The scene's affine transform, or None.
        dtype: "float32" (nodata NaN) or "uint8" (value * 254, 255 = nodata, scale 1/254).
        overwrite: Replace an existing file.

    Returns:
        A writer with ``.write(window, block)`` and ``.close()``.
    """
    return ConfidenceMapWriter(path, height, width, crs=crs, transform=transform, dtype=dtype,
                               overwrite=overwrite)


def _write_whole(writer: _GridWriter, array: np.ndarray, window_size: int) -> None:
    from hsizoo.io.windows import plan_windows

    with writer:
        for win, _, _ in plan_windows(writer.height, writer.width, window_size):
            r, c = int(win.row_off), int(win.col_off)
            writer.write(win, array[r:r + int(win.height), c:c + int(win.width)])


def write_class_map(path: str | Path, class_map: np.ndarray, *, crs: Any, transform: Any,
                    class_names: Sequence[str], colors: Sequence[Sequence[int]] | None = None,
                    nodata: int = 0, overwrite: bool = False, window_size: int = 512,
                    legend: bool = True, overviews: bool = True) -> Path:
    """Write an (H, W) class map as a georeferenced, colour-mapped GeoTIFF.

    Args:
        path: Output GeoTIFF path.
        class_map: (H, W) integer class ids, 0 = unclassified, 1..K classes.
        crs: The scene's CRS (None for a non-georeferenced scene).
        transform: The scene's affine transform (None for a non-georeferenced scene).
        class_names: Names of classes 1..K.
        colors: One (r, g, b) per class, or None for the default palette.
        nodata: Id of unclassified pixels; 0.
        overwrite: Replace an existing file.
        window_size: Rows/cols written per step.
        legend: Write the GDAL legend sidecar (category names, raster attribute table).
        overviews: Build internal overviews (mode resampling).

    Returns:
        The path written.

    Raises:
        FileExistsError: the file exists and overwrite is False.
        ValueError: a class id beyond ``len(class_names)``, or a map that is not 2-D.
    """
    class_map = np.asarray(class_map)
    if class_map.ndim != 2:
        raise ValueError(f"class_map must be (H, W); got shape {class_map.shape}.")
    if class_map.size and (class_map.max() > len(class_names) or class_map.min() < 0):
        bad = class_map.max() if class_map.max() > len(class_names) else class_map.min()
        # checked up front as well as per window so a bad map fails before any file is created
        raise ValueError(
            f"class_map holds class id {bad} but {len(class_names)} class names were given "
            f"(valid ids: 0 = unclassified, 1..{len(class_names)}). Give one name per class."
        )
    writer = open_class_map_writer(path, *class_map.shape, crs=crs, transform=transform,
                                   class_names=class_names, colors=colors, nodata=nodata,
                                   overwrite=overwrite, legend=legend, overviews=overviews)
    _write_whole(writer, class_map, window_size)
    return writer.path


def write_confidence_map(path: str | Path, conf: np.ndarray, *, crs: Any, transform: Any,
                         dtype: str = "float32", valid: np.ndarray | None = None,
                         overwrite: bool = False, window_size: int = 512) -> Path:
    """Write an (H, W) confidence map (0..1) on the scene's grid.

    Args:
        path: Output GeoTIFF path.
        conf: (H, W) confidences in 0..1; NaN = nodata.
        crs: The scene's CRS, or None.
        transform: The scene's affine transform, or None.
        dtype: "float32" (nodata NaN) or "uint8" (value * 254, 255 = nodata, scale 1/254).
        valid: Optional (H, W) mask; pixels where it is False are written as nodata.
        overwrite: Replace an existing file.
        window_size: Rows/cols written per step.

    Returns:
        The path written.
    """
    conf = np.asarray(conf, dtype=np.float32)
    if conf.ndim != 2:
        raise ValueError(f"conf must be (H, W); got shape {conf.shape}.")
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != conf.shape:
            raise ValueError(f"valid mask shape {valid.shape} differs from conf {conf.shape}.")
        conf = np.where(valid, conf, np.nan).astype(np.float32)
    writer = open_confidence_map_writer(path, *conf.shape, crs=crs, transform=transform,
                                        dtype=dtype, overwrite=overwrite)
    _write_whole(writer, conf, window_size)
    return writer.path


def read_class_map_metadata(path: str | Path) -> dict:
    """Class names, colours and nodata of a class map written by :func:`write_class_map`.

    Args:
        path: A class-map GeoTIFF.

    Returns:
        ``{"class_names": [...], "colors": [(r, g, b), ...], "nodata": int}``.
    """
    import rasterio

    with rasterio.open(path) as ds:
        tags = ds.tags()
        names = json.loads(tags["CLASS_NAMES"]) if "CLASS_NAMES" in tags else None
        cmap = ds.colormap(1)
        colors = [tuple(cmap[i][:3]) for i in range(1, len(names) + 1)] if names else None
        return {"class_names": names, "colors": colors, "nodata": ds.nodata}
