"""Simulated hyperspectral scenes from a real spectral library.

A simulated scene pairs a class layout (generated, or the real label map of a benchmark scene)
with spectra built from measured and modelled reflectance spectra of the ``earthlib`` library
(ICRAF-ISRIC soils, ASD urban and non-photosynthetic materials, PROSAIL canopies; 400-2450 nm at
10 nm, water-vapour bands removed). It gives tests and benchmarks scenes of any size, for any
sensor preset, with a known truth, where only a few real cubes are at hand.

What is modelled, in the order it is applied (:func:`simulate_scene`):

1. Materials. Each class mixes 1-3 material *slots* drawn from the library by cover type (several
   vegetation classes from different PROSAIL canopies, soils, urban surfaces, litter), with
   class-specific Dirichlet proportions. Each slot holds a few similar spectra (the chosen one
   and its nearest neighbours of the same cover type).
2. Within-class variability. Per pixel, slot proportions are perturbed in log space by a smooth
   random field plus white noise, and the mixture among a slot's similar spectra is a random
   Dirichlet draw, so pixels of one class differ the way fields and roofs do.
3. Mixed pixels at class boundaries. Each pixel's spectrum is a blend of the classes around it,
   weighted by Gaussian-smoothed one-hot class maps (``mixing_width`` pixels).
4. Illumination. A smooth multiplicative brightness field (topography, haze, BRDF).
5. Band resampling. Library spectra are resampled to the sensor's bands with a Gaussian spectral
   response of each band's FWHM. All steps above are linear in the endmember spectra, so the
   resampling is done once per endmember, not per pixel.
6. Noise. Additive Gaussian noise with per-band standard deviation = band mean / ``noise_snr``.

Honest limits: the library has no water spectrum, so the "water" material (for a class named
water) is a synthetic analytic spectrum and is named ``synthetic:water`` in the scene's meta.
Sensor bands in the library's removed water-vapour ranges (1350-1460 and 1790-1960 nm) are
linear interpolations across those gaps, and bands beyond the library's 400-2450 nm range are
flat extrapolations of its end values: plausible numbers, not measurements. No atmosphere is
simulated (the cube is surface reflectance).
"""
from __future__ import annotations

import csv
import importlib.util
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from hsizoo.io.scene import Scene
from hsizoo.spectral.sensors import get_sensor

__all__ = [
    "LAYOUTS",
    "SpectralLibrary",
    "data_dir",
    "load_layout",
    "load_spectral_library",
    "make_layout",
    "read_envi_library",
    "resample_spectra",
    "simulate_scene",
]

# --------------------------------------------------------------------------------------------
# The spectral library
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpectralLibrary:
    """A reflectance spectral library.

    Attributes:
        wavelengths: (L,) sample wavelengths in nm, strictly increasing (with gaps where the
            water-vapour bands were removed).
        spectra: (N, L) float32 reflectance (0-1), read-only.
        names: N spectrum names, in row order.
        metadata: Column name -> (N,) array of strings, from the library's CSV (for earthlib:
            LEVEL_1 pervious/impervious, LEVEL_2 bare/vegetation/npv/built/burned, LEVEL_3 cover
            type such as soil, canopy, road, asphalt, LEVEL_4 measured/simulated, SOURCE, ...).
        path: The binary file the spectra were read from.
    """

    wavelengths: np.ndarray
    spectra: np.ndarray
    names: tuple[str, ...]
    metadata: dict[str, np.ndarray] = field(repr=False)
    path: str = ""

    def __len__(self) -> int:
        return int(self.spectra.shape[0])

    def where(self, **columns: str | Sequence[str]) -> np.ndarray:
        """Row indices whose metadata match, e.g. ``lib.where(LEVEL_3=["soil", "dirt"])``.

        Args:
            **columns: Column name -> accepted value or values (case-insensitive).

        Returns:
            Sorted int64 row indices.
        """
        keep = np.ones(len(self), dtype=bool)
        for col, values in columns.items():
            if col not in self.metadata:
                raise KeyError(f"No metadata column {col!r}; columns: {sorted(self.metadata)}.")
            vals = [values] if isinstance(values, str) else list(values)
            keep &= np.isin(np.char.lower(self.metadata[col].astype(str)),
                            [v.lower() for v in vals])
        return np.flatnonzero(keep)


_ENVI_DTYPES = {1: "u1", 2: "i2", 3: "i4", 4: "f4", 5: "f8", 12: "u2", 13: "u4", 14: "i8",
                15: "u8"}


def _read_envi_header(path: Path) -> dict[str, str]:
    text = path.read_text(encoding="utf-8", errors="replace")
    if not text.lstrip().startswith("ENVI"):
        raise ValueError(f"{path} is not an ENVI header (it must start with 'ENVI').")
    fields: dict[str, str] = {}
    # Values are either one line, or a {...} list that may span lines.
    for m in re.finditer(r"^\s*([^=\n{}]+?)\s*=\s*(\{.*?\}|[^\n]*)", text, re.M | re.S):
        fields[m.group(1).strip().lower()] = m.group(2).strip()
    return fields


def _envi_list(value: str) -> list[str]:
    return [v.strip() for v in value.strip().strip("{}").split(",") if v.strip()]


def _earthlib_data_dir() -> Path:
    # find_spec locates the package without importing it (earthlib's __init__ pulls in more).
    spec = importlib.util.find_spec("earthlib")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "The earthlib package (the spectral library of simulated scenes) is not installed; "
            "install it with `pip install earthlib`.")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def read_envi_library(sli: Path, csv_path: Path | None = None) -> SpectralLibrary:
    """Read an ENVI spectral library (``.sli`` + ``.sli.hdr``) with numpy, and its CSV metadata.

    Args:
        sli: Path of the binary ``.sli`` file; the header is ``<sli>.hdr``.
        csv_path: Optional CSV with a NAME column and one row per spectrum.

    Returns:
        The library, rows in the order of the binary file.
    """
    hdr = _read_envi_header(Path(str(sli) + ".hdr"))
    samples, lines = int(hdr["samples"]), int(hdr["lines"])
    if int(hdr.get("bands", "1")) != 1:
        raise ValueError(f"{sli}: an ENVI spectral library has bands = 1; got {hdr['bands']}.")
    code = int(hdr["data type"])
    if code not in _ENVI_DTYPES:
        raise ValueError(f"{sli}: unsupported ENVI data type {code}.")
    dtype = np.dtype(_ENVI_DTYPES[code]).newbyteorder(">" if hdr.get("byte order") == "1" else "<")
    data = np.fromfile(sli, dtype=dtype, count=samples * lines,
                       offset=int(hdr.get("header offset", "0")))
    if data.size != samples * lines:
        raise ValueError(f"{sli} holds {data.size} values; its header promises {samples * lines}.")
    spectra = data.reshape(lines, samples).astype(np.float32)
    wl = np.asarray([float(v) for v in _envi_list(hdr["wavelength"])], dtype=np.float64)
    units = hdr.get("wavelength units", "").lower()
    if units.startswith("micro") or units in ("um", "µm") or (not units and wl.max() < 30):
        wl = wl * 1000.0
    names = tuple(_envi_list(hdr.get("spectra names", ""))) or tuple(str(i) for i in range(lines))
    metadata: dict[str, np.ndarray] = {}
    if csv_path is not None:
        with open(csv_path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        # Rows are matched by position: names are not unique in earthlib (ash, charbark, ...)
        # and one differs in spelling between its header and CSV (burncham / burnedcham).
        agree = sum(r.get("NAME") == n for r, n in zip(rows, names))
        if len(rows) != lines or agree < 0.99 * lines:
            raise ValueError(
                f"{csv_path} does not describe {sli} row by row ({len(rows)} rows for {lines} "
                f"spectra, {agree} names in agreement).")
        for col in rows[0]:
            metadata[col] = np.asarray([r[col] for r in rows])
    spectra.setflags(write=False)
    wl.setflags(write=False)
    return SpectralLibrary(wavelengths=wl, spectra=spectra, names=names, metadata=metadata,
                           path=str(sli))


@lru_cache(maxsize=1)
def load_spectral_library() -> SpectralLibrary:
    """The earthlib spectral library (7,261 spectra, 400-2450 nm at 10 nm), read once and cached.

    Returns:
        The library; its arrays are read-only and shared between calls.

    Raises:
        ModuleNotFoundError: earthlib is not installed.
    """
    data = _earthlib_data_dir()
    return read_envi_library(data / "spectra.sli", data / "spectra.csv")


# --------------------------------------------------------------------------------------------
# Band resampling
# --------------------------------------------------------------------------------------------

_FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


@lru_cache(maxsize=32)
def _response_matrix(lib_wl: tuple[float, ...], band_wl: tuple[float, ...],
                     fwhm: tuple[float, ...]) -> np.ndarray:
    """(B, L) matrix taking library samples to sensor bands.

    The library spectrum is taken as piecewise linear between its samples (so across its removed
    water-vapour gaps too) and constant beyond its first and last sample; each band integrates it
    against a Gaussian response of the band's FWHM on a fine wavelength grid.
    """
    lw, bw, fw = (np.asarray(v, dtype=np.float64) for v in (lib_wl, band_wl, fwhm))
    sigma = fw * _FWHM_TO_SIGMA
    step = float(np.clip(fw.min() / 8.0, 0.05, 1.0))
    fine = np.arange((bw - 3.5 * fw).min(), (bw + 3.5 * fw).max() + step, step)
    # Linear interpolation as a matrix: fine point -> two neighbouring library samples.
    x = np.clip(fine, lw[0], lw[-1])
    hi = np.clip(np.searchsorted(lw, x, side="right"), 1, lw.size - 1)
    lo = hi - 1
    t = (x - lw[lo]) / (lw[hi] - lw[lo])
    interp = np.zeros((fine.size, lw.size))
    rows = np.arange(fine.size)
    interp[rows, lo] += 1.0 - t
    interp[rows, hi] += t
    srf = np.exp(-0.5 * ((fine[None, :] - bw[:, None]) / sigma[:, None]) ** 2)
    srf /= srf.sum(axis=1, keepdims=True)
    return srf @ interp


def resample_spectra(spectra: np.ndarray, lib_wl: np.ndarray, band_wl: np.ndarray,
                     fwhm: np.ndarray | None = None) -> np.ndarray:
    """Resample library spectra to sensor bands with Gaussian spectral responses.

    Bands in the library's gaps are linear interpolations across the gap; bands beyond its range
    use its first/last value (flat extrapolation).

    Args:
        spectra: (N, L) spectra sampled at ``lib_wl``.
        lib_wl: (L,) library wavelengths in nm.
        band_wl: (B,) band centres in nm.
        fwhm: (B,) band FWHM in nm; default the local band spacing.

    Returns:
        (N, B) float32 band values.
    """
    band_wl = np.asarray(band_wl, dtype=np.float64)
    if fwhm is None:
        fwhm = np.abs(np.gradient(band_wl)) if band_wl.size > 1 else np.array([10.0])
    m = _response_matrix(tuple(np.asarray(lib_wl, float).tolist()), tuple(band_wl.tolist()),
                         tuple(np.asarray(fwhm, float).tolist()))
    return (np.asarray(spectra, dtype=np.float64) @ m.T).astype(np.float32)


def _coverage(lib_wl: np.ndarray, band_wl: np.ndarray) -> dict[str, int]:
    step = float(np.median(np.diff(lib_wl)))
    gaps = [(a, b) for a, b in zip(lib_wl[:-1], lib_wl[1:]) if b - a > 1.5 * step]
    in_gap = sum(int(np.count_nonzero((band_wl > a + step / 2) & (band_wl < b - step / 2)))
                 for a, b in gaps)
    beyond = int(np.count_nonzero((band_wl < lib_wl[0] - step / 2)
                                  | (band_wl > lib_wl[-1] + step / 2)))
    return {"bands_interpolated_across_library_gaps": in_gap,
            "bands_extrapolated_beyond_library": beyond}


# --------------------------------------------------------------------------------------------
# Layouts
# --------------------------------------------------------------------------------------------

#: Real label maps known to :func:`load_layout`: file name, array key and class names.
LAYOUTS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "indian_pines": ("Indian_pines_gt.mat", "indian_pines_gt", (
        "Alfalfa", "Corn-notill", "Corn-mintill", "Corn", "Grass-pasture", "Grass-trees",
        "Grass-pasture-mowed", "Hay-windrowed", "Oats", "Soybean-notill", "Soybean-mintill",
        "Soybean-clean", "Wheat", "Woods", "Buildings-Grass-Trees-Drives",
        "Stone-Steel-Towers")),
    "pavia_university": ("pavia_university_gt.npz", "gt", (
        "Asphalt", "Meadows", "Gravel", "Trees", "Painted metal sheets", "Bare Soil", "Bitumen",
        "Self-Blocking Bricks", "Shadows")),
    "salinas": ("salinas_gt.npz", "gt", (
        "Brocoli_green_weeds_1", "Brocoli_green_weeds_2", "Fallow", "Fallow_rough_plow",
        "Fallow_smooth", "Stubble", "Celery", "Grapes_untrained", "Soil_vinyard_develop",
        "Corn_senesced_green_weeds", "Lettuce_romaine_4wk", "Lettuce_romaine_5wk",
        "Lettuce_romaine_6wk", "Lettuce_romaine_7wk", "Vinyard_untrained",
        "Vinyard_vertical_trellis")),
    "ksc": ("ksc_gt.npz", "gt", (
        "Scrub", "Willow swamp", "Cabbage palm hammock", "Cabbage palm/oak hammock",
        "Slash pine", "Oak/broadleaf hammock", "Hardwood swamp", "Graminoid marsh",
        "Spartina marsh", "Cattail marsh", "Salt marsh", "Mud flats", "Water")),
}


def data_dir() -> Path:
    """Folder of the benchmark data: ``$HSIZOO_DATA_DIR``, else ``../shared/data/hsi`` next to
    the source checkout."""
    env = os.environ.get("HSIZOO_DATA_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data" / "hsi"


def load_layout(name: str) -> np.ndarray:
    """The real ground-truth label map of a benchmark scene, as a layout for simulation.

    Args:
        name: One of ``LAYOUTS`` ("indian_pines", "pavia_university", "salinas", "ksc"),
            case-insensitive.

    Returns:
        (H, W) int64 label map, 0 = unlabelled.

    Raises:
        ValueError: unknown name.
        FileNotFoundError: the file is not in :func:`data_dir`.
    """
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    if key not in LAYOUTS:
        raise ValueError(f"Unknown layout {name!r}; known layouts: {', '.join(LAYOUTS)}. Or pass "
                         "an (H, W) label map, or an (H, W) shape to generate one.")
    fname, var, _ = LAYOUTS[key]
    path = data_dir() / fname
    if not path.exists():
        raise FileNotFoundError(
            f"Layout {key!r} needs {path}, which does not exist. Put the file there or point "
            "HSIZOO_DATA_DIR at the folder that holds it.")
    if path.suffix == ".mat":
        from scipy.io import loadmat

        mat = loadmat(path)
        if var not in mat:
            raise KeyError(f"{path} has no variable {var!r}; it has "
                           f"{[k for k in mat if not k.startswith('__')]}.")
        gt = mat[var]
    else:
        with np.load(path) as z:
            gt = z[var]
    return np.asarray(gt).astype(np.int64)


def make_layout(shape: tuple[int, int] = (145, 145), num_classes: int = 8, seed: int = 0,
                kind: str = "voronoi", *, background: float = 0.15) -> np.ndarray:
    """Generate a class layout.

    Args:
        shape: (H, W) in pixels.
        num_classes: Number of classes K; every class 1..K occurs.
        seed: Seed of ``numpy.random.default_rng``.
        kind: "voronoi" (irregular regions around random sites) or "fields" (rectangular
            fields in strips, separated by unlabelled tracks, like an agricultural scene).
        background: Fraction of regions left unlabelled (0).

    Returns:
        (H, W) int64 label map, 0 = unlabelled, 1..K classes.

    Raises:
        ValueError: bad shape, class count or kind, or a shape too small for K classes.
    """
    h, w = _check_shape(shape)
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
            or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer; got {num_classes!r}.")
    if not 0.0 <= background < 1.0:
        raise ValueError(f"background must be a fraction in [0, 1); got {background}.")
    rng = np.random.default_rng(seed)
    if kind == "voronoi":
        return _voronoi_layout(h, w, int(num_classes), rng, background)
    if kind == "fields":
        return _fields_layout(h, w, int(num_classes), rng, background)
    raise ValueError(f"Unknown layout kind {kind!r}; use 'voronoi' or 'fields'.")


def _check_shape(shape: object) -> tuple[int, int]:
    if (not isinstance(shape, (tuple, list)) or len(shape) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                       for v in shape) or min(shape) < 1):
        raise ValueError(f"A layout shape is (H, W), two positive integers; got {shape!r}.")
    return int(shape[0]), int(shape[1])


def _region_classes(n: int, k: int, rng: np.random.Generator, background: float) -> np.ndarray:
    # The first k regions get every class once, so all classes occur; the rest are random.
    extra = np.where(rng.random(n - k) < background, 0, rng.integers(1, k + 1, n - k))
    if background > 0 and extra.size and not np.any(extra == 0):
        extra[0] = 0  # some unlabelled background, as the docstring promises
    return rng.permutation(np.concatenate([rng.permutation(np.arange(1, k + 1)), extra]))


def _voronoi_layout(h: int, w: int, k: int, rng: np.random.Generator,
                    background: float) -> np.ndarray:
    from scipy.spatial import cKDTree

    n = max(2 * k + 2, (h * w) // 600)
    if h * w < 4 * n:
        raise ValueError(f"A {h} x {w} layout is too small for {k} classes; use a larger shape.")
    sites = rng.random((n, 2)) * (h, w)
    rr, cc = np.mgrid[0:h, 0:w]
    _, nearest = cKDTree(sites).query(np.stack([rr.ravel() + 0.5, cc.ravel() + 0.5], axis=1))
    return _region_classes(n, k, rng, background)[nearest].reshape(h, w).astype(np.int64)


def _cuts(length: int, lo: int, hi: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    spans, start = [], 0
    while start < length:
        size = int(rng.integers(lo, hi + 1))
        if length - (start + size) < lo:  # no sliver at the end
            size = length - start
        spans.append((start, start + size))
        start += size
    return spans


def _fields_layout(h: int, w: int, k: int, rng: np.random.Generator,
                   background: float) -> np.ndarray:
    for scale in (1.0, 0.7, 0.5, 0.35, 0.25, 0.18, 0.12):
        lo_r, lo_c = max(3, int(h * scale / 6)), max(3, int(w * scale / 6))
        strips = _cuts(h, lo_r, max(lo_r, int(h * scale / 3)), rng)
        fields = [(r, c) for r in strips for c in _cuts(w, lo_c, max(lo_c, int(w * scale / 3)),
                                                        rng)]
        if len(fields) >= k + 1:
            break
    else:
        raise ValueError(f"A {h} x {w} layout is too small for {k} rectangular fields; use a "
                         "larger shape or kind='voronoi'.")
    out = np.zeros((h, w), dtype=np.int64)
    classes = _region_classes(len(fields), k, rng, background)
    for ((r0, r1), (c0, c1)), cls in zip(fields, classes):
        # Unlabelled tracks (1-2 pixels) between fields, as between real fields.
        tr, tc = int(rng.integers(1, 3)), int(rng.integers(1, 3))
        out[r0:max(r0 + 1, r1 - tr), c0:max(c0 + 1, c1 - tc)] = cls
    return out


# --------------------------------------------------------------------------------------------
# Materials
# --------------------------------------------------------------------------------------------

# Material groups by earthlib LEVEL_3 cover type.
_GROUPS: dict[str, tuple[str, ...]] = {
    "vegetation": ("canopy",),
    "soil": ("soil", "dirt", "sand"),
    "npv": ("litter", "npv", "bark", "wood"),
    "built_dark": ("asphalt", "road", "parking_lot", "comp_shingle", "concrete_tile"),
    "built_bright": ("sidewalk", "driveway", "paint", "metal", "tile", "bridge", "manhole",
                     "gravel", "wood_shingle", "other"),
    "char": ("char",),
}

# Recipes (slot groups, Dirichlet concentration of the proportions, brightness gain). The first
# slot dominates; the others give the realistic confusion (soil under crops, weeds in fallow).
_RECIPES: dict[str, tuple[tuple[str, ...], tuple[float, ...], float]] = {
    "crop": (("vegetation", "soil", "npv"), (6.0, 2.5, 1.0), 1.0),
    "grass": (("vegetation", "vegetation", "soil"), (6.0, 3.0, 1.0), 1.0),
    "trees": (("vegetation", "npv"), (8.0, 1.5), 1.0),
    "soil": (("soil", "npv", "vegetation"), (8.0, 1.5, 1.0), 1.0),
    "senescent": (("npv", "vegetation", "soil"), (5.0, 2.5, 2.0), 1.0),
    "dark_urban": (("built_dark", "built_dark", "soil"), (6.0, 2.0, 1.0), 1.0),
    "bright_urban": (("built_bright", "built_dark"), (8.0, 1.5), 1.0),
    "shadow": (("built_dark", "vegetation"), (4.0, 2.0), 0.22),
    "water": (("water",), (1.0,), 1.0),
    "marsh": (("vegetation", "water", "soil"), (5.0, 2.0, 1.5), 1.0),
    "background": (("soil", "vegetation", "npv"), (3.0, 3.0, 1.5), 1.0),
}
# Recipes of unnamed classes, in turn (vegetation-heavy, as most benchmark scenes are).
_PALETTE = ("crop", "grass", "soil", "trees", "dark_urban", "crop", "senescent", "bright_urban",
            "grass", "crop", "soil", "trees")
# Class-name keywords -> recipe, first match wins.
_KEYWORDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("shadow",), "shadow"),
    (("water",), "water"),
    (("marsh", "swamp"), "marsh"),
    (("asphalt", "bitumen", "road", "drive", "parking"), "dark_urban"),
    (("brick", "metal", "sheet", "roof", "tile", "building", "tower", "steel", "concrete",
      "gravel", "urban"), "bright_urban"),
    (("stubble", "senesced", "litter", "hay", "npv"), "senescent"),
    (("soil", "fallow", "mud", "bare", "plow", "sand"), "soil"),
    (("tree", "wood", "pine", "hammock", "forest", "scrub"), "trees"),
    (("grass", "meadow", "pasture", "lawn"), "grass"),
)
_VARIANTS = 4  # similar spectra per slot (within-class endmember variability)


def _recipe_for(name: str | None, index: int) -> str:
    if name is not None:
        low = name.lower()
        for words, recipe in _KEYWORDS:
            if any(wd in low for wd in words):
                return recipe
        if not re.fullmatch(r"class_?\d+", low):
            return "crop"  # a named crop or plant
    return _PALETTE[index % len(_PALETTE)]


def _water_spectra(wl: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    """Synthetic inland-water reflectance (the library has none): a low, green-peaked visible
    reflectance that vanishes in the near infrared, with turbidity varying between variants."""
    out = []
    for _ in range(n):
        turbid = rng.uniform(0.5, 1.5)
        vis = 0.015 + 0.035 * turbid * np.exp(-0.5 * ((wl - 560.0) / 70.0) ** 2)
        nir = np.exp(-np.clip(wl - 700.0, 0, None) / (40.0 + 30.0 * turbid))
        out.append(vis * nir + 0.002)
    return np.asarray(out, dtype=np.float32)


@dataclass
class _ClassMix:
    slots: list[np.ndarray]  # rows of the endmember table, one array of variants per slot
    proportions: np.ndarray  # (S,) mean slot proportions
    gain: float
    recipe: str
    ids: list[str]


class _Materials:
    """Endmember table of one simulation and the material mix of every class."""

    def __init__(self, lib: SpectralLibrary, rng: np.random.Generator) -> None:
        self.lib, self.rng = lib, rng
        self.rows: list[np.ndarray] = []  # library-wavelength spectra of the table
        self.ids: list[str] = []
        level3 = np.char.lower(lib.metadata["LEVEL_3"].astype(str))
        self.group_rows = {g: np.flatnonzero(np.isin(level3, v)) for g, v in _GROUPS.items()}
        self.chosen: dict[str, list[int]] = {g: [] for g in _GROUPS}

    def _add(self, spectra: np.ndarray, ids: list[str]) -> np.ndarray:
        start = len(self.rows)
        self.rows.extend(spectra)
        self.ids.extend(ids)
        return np.arange(start, len(self.rows))

    def _pick(self, group: str) -> np.ndarray:
        if group == "water":
            return self._add(_water_spectra(self.lib.wavelengths, self.rng, _VARIANTS),
                             ["synthetic:water"] * _VARIANTS)
        rows = self.group_rows[group]
        spectra = self.lib.spectra[rows]
        # Of a few random candidates, take the one farthest from the spectra this group already
        # gave other classes: classes of one cover type stay distinct yet alike.
        cands = self.rng.choice(rows.size, size=min(6, rows.size), replace=False)
        if self.chosen[group]:
            prev = self.lib.spectra[self.chosen[group]]
            d = ((spectra[cands, None, :] - prev[None]) ** 2).sum(-1).min(1)
            base = int(cands[np.argmax(d)])
        else:
            base = int(cands[0])
        self.chosen[group].append(int(rows[base]))
        # Variants: the base and its nearest neighbours within the group.
        d = ((spectra - spectra[base]) ** 2).sum(1)
        near = np.argsort(d, kind="stable")[:_VARIANTS]
        return self._add(spectra[near], [self.lib.names[int(rows[i])] for i in near])

    def mix(self, recipe: str) -> _ClassMix:
        groups, conc, gain = _RECIPES[recipe]
        # Classes use 1-3 of the recipe's slots; the dominant slot always.
        n = int(self.rng.integers(1, len(groups) + 1)) if len(groups) > 1 else 1
        n = max(n, min(2, len(groups)))  # at least two slots where the recipe has two
        slots = [self._pick(g) for g in groups[:n]]
        props = self.rng.dirichlet(np.asarray(conc[:n]) * 2.0)
        props = np.sort(props)[::-1]  # the recipe's first slot dominates
        ids = [self.ids[s[0]] for s in slots]
        return _ClassMix(slots, props, gain * float(self.rng.uniform(0.9, 1.1)), recipe, ids)

    def table(self) -> np.ndarray:
        return np.asarray(self.rows, dtype=np.float64)


# --------------------------------------------------------------------------------------------
# Random fields and the scene
# --------------------------------------------------------------------------------------------


def _smooth_fields(n: int, shape: tuple[int, int], scale: float, rng: np.random.Generator
                   ) -> np.ndarray:
    """``n`` smooth zero-mean unit-variance random fields (n, H, W) with correlation length
    ``scale`` pixels: white noise low-passed by a Gaussian in the Fourier domain."""
    h, w = shape
    noise = rng.standard_normal((n, h, w))
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    transfer = np.exp(-2.0 * (np.pi * scale) ** 2 * (fy ** 2 + fx ** 2))
    f = np.fft.irfft2(np.fft.rfft2(noise) * transfer, s=(h, w))
    f -= f.mean(axis=(1, 2), keepdims=True)
    f /= f.std(axis=(1, 2), keepdims=True) + 1e-12
    return f


def _as_layout(layout: object, seed: int, num_classes: int) -> tuple[np.ndarray, str | None]:
    if isinstance(layout, str):
        return load_layout(layout), layout.strip().lower().replace("-", "_").replace(" ", "_")
    if isinstance(layout, tuple):
        return make_layout(_check_shape(layout), num_classes=num_classes, seed=seed), None
    arr = np.asarray(layout)
    if arr.ndim != 2:
        raise ValueError(f"layout must be an (H, W) label map, a layout name or an (H, W) shape "
                         f"tuple; got an array of shape {arr.shape}.")
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"A layout label map must hold integer class ids (0 = unlabelled); got "
                         f"dtype {arr.dtype}.")
    if arr.size == 0 or arr.min() < 0:
        raise ValueError("A layout label map must be non-empty with ids >= 0 (0 = unlabelled).")
    if not np.any(arr > 0):
        raise ValueError("The layout has no labelled pixel (all 0); give at least one class.")
    return arr.astype(np.int64), None


def simulate_scene(layout: np.ndarray | str | tuple[int, int] = (145, 145),
                   sensor: str = "aviris_indian_pines", seed: int = 0, *,
                   noise_snr: float | None = 200.0, mixing_width: float = 1.0,
                   illumination: float = 0.12, variability: float = 0.25,
                   class_names: Sequence[str] | None = None, num_classes: int = 8) -> Scene:
    """Simulate a reflectance scene on a class layout from real library spectra.

    See the module docstring for the model. Bands of the sensor inside the library's removed
    water-vapour ranges are linear interpolations across the gap; bands below 400 nm or above
    2450 nm are flat extrapolations of the library's end values; ``meta`` counts both.

    Args:
        layout: (H, W) integer label map (0 = unlabelled background, which gets its own
            soil/vegetation mixture), a name accepted by :func:`load_layout` (class names then
            default to the scene's real ones, which steer the choice of materials), or an
            (H, W) shape for :func:`make_layout` with ``num_classes``.
        sensor: Sensor preset name (:func:`hsizoo.spectral.sensors.get_sensor`).
        seed: Seed of everything random; the same arguments give the same scene.
        noise_snr: Signal-to-noise ratio: per-band noise std = band mean / ``noise_snr``.
            None or inf for no noise.
        mixing_width: Std (pixels) of the Gaussian that blends neighbouring classes at
            boundaries; 0 for pure pixels.
        illumination: Std of the log brightness field (0.12 -> about +-12 %); 0 for none.
        variability: Std of the per-pixel log-abundance perturbation (within-class variability).
        class_names: Names of classes 1..K (K = the largest id of the layout). Names containing
            words like asphalt, soil, trees, water, shadow choose matching materials.
        num_classes: Classes of a generated layout (``layout`` given as a shape).

    Returns:
        A :class:`~hsizoo.io.scene.Scene` with a float32 (H, W, B) reflectance cube, the
        preset's wavelengths and FWHM, all pixels valid, ``labels`` = the layout and
        ``meta`` holding the seed, parameters and library spectra used per class.

    Raises:
        ValueError: unknown sensor, bad layout, class names of the wrong length, bad parameters.
        FileNotFoundError: a named layout whose file is absent.
    """
    from scipy.ndimage import gaussian_filter

    preset = get_sensor(sensor)
    for name, value in (("mixing_width", mixing_width), ("illumination", illumination),
                        ("variability", variability)):
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0; got {value}.")
    if noise_snr is not None and not noise_snr > 0:
        raise ValueError(f"noise_snr must be > 0 (or None for no noise); got {noise_snr}.")
    labels, layout_name = _as_layout(layout, seed, num_classes)
    k = int(labels.max())
    if class_names is None:
        class_names = (list(LAYOUTS[layout_name][2]) if layout_name in LAYOUTS
                       else [f"class_{i}" for i in range(1, k + 1)])
    class_names = [str(c) for c in class_names]
    if len(class_names) != k:
        raise ValueError(f"The layout has classes 1..{k} but {len(class_names)} class names were "
                         "given; pass one name per class id 1..K.")

    seq = np.random.SeedSequence(seed)
    rng_mat, rng_field, rng_pix, rng_noise = (np.random.default_rng(s) for s in seq.spawn(4))
    lib = load_spectral_library()
    mats = _Materials(lib, rng_mat)
    mixes = {0: mats.mix("background")}
    for c in range(1, k + 1):
        mixes[c] = mats.mix(_recipe_for(class_names[c - 1], c - 1))
    endmembers = resample_spectra(mats.table(), lib.wavelengths, preset.wavelengths,
                                  preset.fwhm).astype(np.float32)  # (M, B)

    h, w = labels.shape
    n_fields = 6
    fields = _smooth_fields(n_fields + 1, (h, w), max(4.0, min(h, w) / 12.0), rng_field)
    smooth = fields[:n_fields].reshape(n_fields, -1).T.astype(np.float32)  # (HW, G)
    brightness = np.exp(illumination * fields[n_fields] - illumination ** 2 / 2.0)

    # Soft class memberships (mixed pixels at boundaries): smoothed one-hot maps, which still sum
    # to one at every pixel.
    ids = np.unique(labels)
    flat_labels = labels.reshape(-1)
    cube = np.zeros((h * w, preset.num_bands), dtype=np.float32)
    weight_sum = np.zeros(h * w, dtype=np.float32)
    for c in ids.tolist():
        onehot = (labels == c).astype(np.float32)
        memb = (gaussian_filter(onehot, mixing_width, mode="nearest") if mixing_width > 0
                else onehot).reshape(-1)
        idx = np.flatnonzero(memb > 1e-3)
        spectra = _class_pixels(mixes[c], idx, smooth, endmembers, variability, rng_pix)
        cube[idx] += memb[idx, None] * spectra
        weight_sum[idx] += memb[idx]
    cube /= weight_sum[:, None]
    cube *= brightness.reshape(-1, 1).astype(np.float32)
    if noise_snr is not None and np.isfinite(noise_snr):
        sigma = cube.mean(axis=0) / np.float32(noise_snr)
        cube += rng_noise.standard_normal(cube.shape, dtype=np.float32) * sigma[None, :]

    meta = {
        "simulated": True,
        "seed": seed,
        "layout": layout_name or "array",
        "library": "earthlib spectra.sli (" + lib.path + ")",
        "library_ids": {("background" if c == 0 else class_names[c - 1]): mixes[c].ids
                        for c in mixes},
        "recipes": {("background" if c == 0 else class_names[c - 1]): mixes[c].recipe
                    for c in mixes},
        "params": {"noise_snr": noise_snr, "mixing_width": mixing_width,
                   "illumination": illumination, "variability": variability},
        **_coverage(lib.wavelengths, preset.wavelengths),
    }
    fwhm = None if preset.fwhm is None else np.array(preset.fwhm)
    return Scene(cube=cube.reshape(h, w, -1), wavelengths=np.array(preset.wavelengths),
                 valid=np.ones((h, w), dtype=bool), fwhm=fwhm,
                 band_names=list(preset.band_names) if preset.band_names else None,
                 labels=labels, class_names=class_names, sensor=preset.name, meta=meta)


def _class_pixels(mix: _ClassMix, idx: np.ndarray, smooth: np.ndarray, endmembers: np.ndarray,
                  variability: float, rng: np.random.Generator) -> np.ndarray:
    """Spectra (n, B) of class ``mix`` at flat pixel indices ``idx``."""
    n, s = idx.size, len(mix.slots)
    # Slot proportions: class mean, perturbed in log space by smooth fields (spatially coherent
    # variation, like a field's moisture or density) and per-pixel noise, then renormalised.
    load = rng.standard_normal((smooth.shape[1], s)).astype(np.float32) / np.sqrt(smooth.shape[1])
    logit = (np.log(mix.proportions).astype(np.float32)[None, :]
             + variability * (smooth[idx] @ load)
             + 0.5 * variability * rng.standard_normal((n, s), dtype=np.float32))
    logit -= logit.max(axis=1, keepdims=True)
    prop = np.exp(logit)
    prop /= prop.sum(axis=1, keepdims=True)
    # Within a slot, a random mixture of its similar spectra (concentration 0.5: mostly one).
    cols, weights = [], []
    for j, rows in enumerate(mix.slots):
        g = rng.standard_gamma(0.5, size=(n, rows.size)).astype(np.float32) + 1e-6
        weights.append(prop[:, j:j + 1] * g / g.sum(axis=1, keepdims=True))
        cols.append(rows)
    abund = np.concatenate(weights, axis=1)
    return (abund @ endmembers[np.concatenate(cols)]) * np.float32(mix.gain)
