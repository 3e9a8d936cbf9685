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
   Dirichlet draw, so pixels of one class differ the way fields and roofs do. With
   ``field_variability`` > 0, every *field* (a connected region of one class in the layout) also
   gets its own log-proportion offsets and its own mixture of the slot's spectra: fields of one
   crop then differ from field to field, sometimes more than from a field of another crop, as on
   the real Indian Pines (a tuning scene for that difficulty without its labels).
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

The parts live in modules of one job each: :mod:`hsizoo.data.spectral_library` (reading the
library), :mod:`hsizoo.data.layouts` (class layouts) and :mod:`hsizoo.data.materials` (the
endmembers of every class); this module resamples them to the sensor's bands and assembles the
scene (within-class variability, mixed pixels, illumination, noise).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np

from hsizoo.data.layouts import LAYOUTS, _as_layout, data_dir, load_layout, make_layout
from hsizoo.data.materials import _ClassMix, _Materials, _recipe_for
from hsizoo.data.spectral_library import (
    SpectralLibrary,
    load_spectral_library,
    read_envi_library,
)
from hsizoo.io.scene import Scene
from hsizoo.spectral.sensors import get_sensor

# The library, layout and loading names are defined in their own modules and kept importable
# from here, where they were public first.
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


def simulate_scene(layout: np.ndarray | str | tuple[int, int] = (145, 145),
                   sensor: str = "aviris_indian_pines", seed: int = 0, *,
                   noise_snr: float | None = 200.0, mixing_width: float = 1.0,
                   illumination: float = 0.12, variability: float = 0.25,
                   class_names: Sequence[str] | None = None, num_classes: int = 8,
                   field_variability: float = 0.0, layout_kind: str = "voronoi",
                   fields_per_class: int = 1, class_skew: float = 0.0,
                   material_pool: int | dict[str, int] | None = None) -> Scene:
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
        field_variability: Std of every field's own log-proportion offset (0 = none: the
            scene is exactly what it was before this option existed). A field is a connected
            region of one class; it also draws its own mixture of each slot's spectra.
        layout_kind: Kind of a generated layout (:func:`make_layout`: "voronoi" or "fields").
        fields_per_class: Fields per class of a generated "fields" layout.
        class_skew: Unequal class areas of a generated layout (:func:`make_layout`; 0 = none,
            the scene as before this option existed).
        material_pool: At most this many distinct spectra sets per cover type (an int for
            every type, or ``{"vegetation": 3, "soil": 1, "npv": 1}``); later classes reuse
            one of them, so classes differ by their proportions rather than by their materials,
            as crops on the same soils do. None (default): every class picks its own.

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
                        ("variability", variability), ("field_variability", field_variability),
                        ("class_skew", class_skew)):
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0; got {value}.")
    if noise_snr is not None and not noise_snr > 0:
        raise ValueError(f"noise_snr must be > 0 (or None for no noise); got {noise_snr}.")
    if layout_kind not in ("voronoi", "fields"):
        raise ValueError(f"layout_kind must be 'voronoi' or 'fields'; got {layout_kind!r}.")
    if class_skew and not isinstance(layout, tuple):
        raise ValueError("class_skew applies to a generated layout (give its (H, W) shape); a "
                         "given or named label map keeps its own class areas.")
    if isinstance(layout, tuple) and (layout_kind != "voronoi" or class_skew):
        layout = make_layout(layout, num_classes=num_classes, seed=seed, kind=layout_kind,
                             fields_per_class=fields_per_class, class_skew=class_skew)
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
    # A fifth stream for the fields: the first four are those of scenes without field effects.
    rng_mat, rng_field, rng_pix, rng_noise, rng_fields = (np.random.default_rng(s)
                                                          for s in seq.spawn(5))
    lib = load_spectral_library()
    mats = _Materials(lib, rng_mat, _pool(material_pool))
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
        field = _field_effects(labels == c, idx, mixes[c], field_variability, rng_fields) \
            if field_variability > 0 and c != 0 else None
        spectra = _class_pixels(mixes[c], idx, smooth, endmembers, variability, rng_pix, field)
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
                   "illumination": illumination, "variability": variability,
                   **({"field_variability": field_variability} if field_variability > 0 else {}),
                   **({"layout_kind": layout_kind, "fields_per_class": fields_per_class}
                      if layout_kind != "voronoi" else {}),
                   **({"material_pool": _pool(material_pool)} if material_pool else {}),
                   **({"class_skew": class_skew} if class_skew else {})},
        **_coverage(lib.wavelengths, preset.wavelengths),
    }
    fwhm = None if preset.fwhm is None else np.array(preset.fwhm)
    return Scene(cube=cube.reshape(h, w, -1), wavelengths=np.array(preset.wavelengths),
                 valid=np.ones((h, w), dtype=bool), fwhm=fwhm,
                 band_names=list(preset.band_names) if preset.band_names else None,
                 labels=labels, class_names=class_names, sensor=preset.name, meta=meta)


def _pool(pool: int | dict[str, int] | None) -> dict[str, int] | None:
    """``material_pool`` as {cover type: distinct picks}, checked."""
    from hsizoo.data.materials import _GROUPS

    if pool is None:
        return None
    groups = list(_GROUPS) + ["water"]
    out = dict.fromkeys(groups, pool) if isinstance(pool, int) and not isinstance(pool, bool) \
        else dict(pool) if isinstance(pool, dict) else None
    if out is None or any(k not in groups or isinstance(v, bool) or not isinstance(v, int)
                          or v < 1 for k, v in out.items()):
        raise ValueError(f"material_pool must be a positive int or a dict of cover type -> "
                         f"positive int with types among {groups}; got {pool!r}.")
    return out


def _field_effects(mask: np.ndarray, idx: np.ndarray, mix: _ClassMix, std: float,
                   rng: np.random.Generator) -> tuple[np.ndarray, list[np.ndarray]]:
    """Per-pixel field offsets of one class: (n, S) log-proportion offsets and, per slot, (n, V)
    weights of its spectra, each pixel taking those of its field (the nearest field of the
    class for blended pixels just outside it)."""
    from scipy.ndimage import distance_transform_edt, label

    fields, n_fields = label(mask)
    if n_fields == 0:
        return np.zeros((idx.size, len(mix.slots)), np.float32), [
            np.ones((idx.size, rows.size), np.float32) for rows in mix.slots]
    nearest = distance_transform_edt(fields == 0, return_distances=False, return_indices=True)
    of = fields[nearest[0], nearest[1]].reshape(-1)[idx] - 1  # field of each pixel, 0-based
    offsets = std * rng.standard_normal((n_fields, len(mix.slots))).astype(np.float32)
    weights = [rng.standard_gamma(0.5, size=(n_fields, rows.size)).astype(np.float32) + 1e-3
               for rows in mix.slots]
    return offsets[of], [w[of] for w in weights]


def _class_pixels(mix: _ClassMix, idx: np.ndarray, smooth: np.ndarray, endmembers: np.ndarray,
                  variability: float, rng: np.random.Generator,
                  field: tuple[np.ndarray, list[np.ndarray]] | None = None) -> np.ndarray:
    """Spectra (n, B) of class ``mix`` at flat pixel indices ``idx`` (``field``: the offsets
    and slot weights of :func:`_field_effects`)."""
    n, s = idx.size, len(mix.slots)
    # Slot proportions: class mean, perturbed in log space by smooth fields (spatially coherent
    # variation, like a field's moisture or density) and per-pixel noise, then renormalised.
    load = rng.standard_normal((smooth.shape[1], s)).astype(np.float32) / np.sqrt(smooth.shape[1])
    logit = (np.log(mix.proportions).astype(np.float32)[None, :]
             + variability * (smooth[idx] @ load)
             + 0.5 * variability * rng.standard_normal((n, s), dtype=np.float32))
    if field is not None:
        logit += field[0]
    logit -= logit.max(axis=1, keepdims=True)
    prop = np.exp(logit)
    prop /= prop.sum(axis=1, keepdims=True)
    # Within a slot, a random mixture of its similar spectra (concentration 0.5: mostly one).
    cols, weights = [], []
    for j, rows in enumerate(mix.slots):
        g = rng.standard_gamma(0.5, size=(n, rows.size)).astype(np.float32) + 1e-6
        if field is not None:
            g = g * field[1][j]  # the field's own mixture of the slot's spectra
        weights.append(prop[:, j:j + 1] * g / g.sum(axis=1, keepdims=True))
        cols.append(rows)
    abund = np.concatenate(weights, axis=1)
    return (abund @ endmembers[np.concatenate(cols)]) * np.float32(mix.gain)
