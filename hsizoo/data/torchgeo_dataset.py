"""A TorchGeo ``RasterDataset`` for hyperspectral scenes that carries their wavelengths.

TorchGeo's samplers (``RandomGeoSampler``, ``GridGeoSampler``) and dataset algebra (``&`` with a
label dataset, ``|`` over flight lines) work on :class:`HyperspectralRasterDataset` as on any
``RasterDataset``; each sample also holds ``"wavelengths"``, the (B,) band centres in nm that every
hsizoo model takes with its input::

    from torchgeo.samplers import RandomGeoSampler
    from hsizoo.data.torchgeo_dataset import HyperspectralRasterDataset

    ds = HyperspectralRasterDataset("flightlines/")           # GeoTIFFs / ENVI with wavelengths
    sample = ds[next(iter(RandomGeoSampler(ds, size=64, length=1)))]
    logits = model(sample["image"][None, :, :9, :9], sample["wavelengths"])

The wavelengths of each file are found by hsizoo's readers (band tags, ENVI headers, units;
:mod:`hsizoo.io.band_metadata`), or given with ``wavelengths=`` / ``sensor=``; all files must
share them. ``bands=`` selects bands by their names, the wavelengths as ``f"{nm:g}"`` strings
(:attr:`HyperspectralRasterDataset.all_bands`). Needs the ``torchgeo`` extra
(``pip install "hsizoo[torchgeo]"``).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hsizoo._optional import require

require("torchgeo", "hsizoo.data.torchgeo_dataset (a TorchGeo RasterDataset)")

import torch  # noqa: E402
from torchgeo.datasets import RasterDataset  # noqa: E402

__all__ = ["HyperspectralRasterDataset"]


class HyperspectralRasterDataset(RasterDataset):
    """Hyperspectral rasters (GeoTIFF, ENVI, anything GDAL reads) as a TorchGeo dataset.

    Attributes:
        wavelengths: (B,) band centres in nm of all the files' bands.
        band_wavelengths: (b,) band centres of the bands returned (``bands=``).
        all_bands: Band names: the wavelengths as strings (``"450.5"``).
    """

    filename_glob = "*.tif"
    is_image = True
    separate_files = False

    def __init__(self, paths: str | Path | Iterable[str | Path] = "data", crs: Any = None,
                 res: float | tuple[float, float] | None = None,
                 bands: Sequence[str] | None = None,
                 transforms: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                 cache: bool = True, *, wavelengths: Sequence[float] | None = None,
                 sensor: str | None = None, filename_glob: str | None = None) -> None:
        """Index the rasters under ``paths`` and read their band wavelengths.

        Args:
            paths: Folders to search (``filename_glob``) or files.
            crs: CRS to warp to (default: the first file's).
            res: Resolution in CRS units (default: the first file's).
            bands: Band names to return (wavelength strings from :attr:`all_bands`); all by
                default.
            transforms: Applied to each sample (after ``"wavelengths"`` is added).
            cache: Keep file handles open between samples.
            wavelengths: Band centres in nm for files without wavelength metadata.
            sensor: Sensor preset for files without wavelength metadata.
            filename_glob: Files to index under folders (default ``*.tif``; e.g. ``*.img``
                for ENVI data files).

        Raises:
            ValueError: files whose wavelengths differ, or no wavelengths found.
            DatasetNotFoundError: no raster found (TorchGeo's error).
        """
        from hsizoo.io.readers import read_scene_info

        if filename_glob is not None:
            self.filename_glob = filename_glob
        self.paths = paths  # TorchGeo's ``files`` lists what these name
        files = sorted(self.files)
        wl = None
        for f in files:
            info = read_scene_info(f, wavelengths=wavelengths, sensor=sensor)
            if wl is None:
                wl, first = info.wavelengths, f
            elif info.wavelengths.shape != wl.shape or not np.allclose(info.wavelengths, wl,
                                                                        atol=1e-3):
                raise ValueError(
                    f"{f} has other band wavelengths than {first} ({info.num_bands} bands, "
                    f"{info.wavelengths[0]:g}-{info.wavelengths[-1]:g} nm against {wl.size}, "
                    f"{wl[0]:g}-{wl[-1]:g} nm); a dataset holds one sensor's bands. Make one "
                    "dataset per sensor (and join them with | ).")
        self.wavelengths = np.zeros(0) if wl is None else np.asarray(wl, dtype=np.float64)
        self.all_bands = tuple(f"{v:g}" for v in self.wavelengths)
        unknown = [b for b in (bands or ()) if b not in self.all_bands]
        if unknown:
            raise ValueError(f"bands {unknown} are not band names of these files; names are "
                             f"their wavelengths in nm: {', '.join(self.all_bands[:6])} ...")
        # TorchGeo applies ``transforms`` inside its __getitem__, before "wavelengths" is added
        # here: they are applied by this class instead, on the complete sample
        super().__init__(paths, crs=crs, res=res, bands=bands, transforms=None, cache=cache)
        self.sample_transforms = transforms
        keep = [self.all_bands.index(b) for b in self.bands] if self.bands else \
            list(range(self.wavelengths.size))
        self.band_wavelengths = self.wavelengths[keep]

    def __getitem__(self, query: Any) -> dict[str, Any]:
        """The sample of a query (TorchGeo's), with ``"wavelengths"``: (b,) float32 nm."""
        sample = super().__getitem__(query)
        sample["wavelengths"] = torch.as_tensor(self.band_wavelengths, dtype=torch.float32)
        if self.sample_transforms is not None:
            sample = self.sample_transforms(sample)
        return sample
