"""Sensor presets: band centre wavelengths and FWHM (nm) of the sensors hsizoo knows by name.

Spectral identity is data (DESIGN.md): a model input always carries wavelengths, and a sensor
whose file does not record them can be named by one of these presets instead.

How exact each table is, is part of the preset: :attr:`SensorPreset.source` says where the numbers
come from. Only Sentinel-2 MSI and the Hyperion channel formula are published per band; the
others are *approximated from the published range and sampling* (linear grids per spectrometer),
because the per-band calibration tables of those instruments are not available offline and vary
between flights, years and product versions. The approximation is within a few nanometres of the
real centres, which is well inside one band width; when the file you read records its own
wavelengths, use those instead.

Every preset is strictly increasing in wavelength. Instruments whose spectrometers overlap (EnMAP
and PRISMA VNIR/SWIR near 900-1000 nm, AVIRIS between its four spectrometers) are represented by
a monotone band list; the docstring of each builder says how the overlap was resolved.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np

__all__ = ["SensorPreset", "UnknownSensorError", "get_sensor", "list_sensors"]

_APPROX = "approximated from published range and sampling"


@dataclass(frozen=True)
class SensorPreset:
    """Band table of a sensor.

    Attributes:
        name: Preset name, lower case (the key of :func:`get_sensor`).
        wavelengths: Band centres in nanometres, (B,) float64, strictly increasing, read-only.
        fwhm: Band full widths at half maximum in nanometres, (B,) float64, or None.
        description: One paragraph on the sensor and the band selection.
        source: Where the band table comes from, and whether it is exact or approximated.
        band_names: Optional band names (multispectral sensors), one per band.
    """

    name: str
    wavelengths: np.ndarray
    fwhm: np.ndarray | None
    description: str
    source: str
    band_names: tuple[str, ...] | None = None

    @property
    def num_bands(self) -> int:
        """Number of bands B."""
        return int(self.wavelengths.shape[0])


class UnknownSensorError(KeyError, ValueError):
    """Raised by :func:`get_sensor` for a name that is not a preset.

    Derives from both KeyError (a failed lookup) and ValueError (a bad argument), so either
    ``except`` clause catches it.
    """

    def __str__(self) -> str:
        # KeyError.__str__ would repr() the message and show it in quotes.
        return str(self.args[0]) if self.args else ""


def _linear(start: float, stop: float, n: int) -> np.ndarray:
    return np.linspace(start, stop, n, dtype=np.float64)


def _spacing_fwhm(wl: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """FWHM equal to the local band spacing (times ``scale``): the usual design of a pushbroom
    imaging spectrometer, whose bands are contiguous and about one sampling interval wide."""
    spacing = np.gradient(wl) if wl.size > 1 else np.ones_like(wl)
    return np.abs(spacing) * scale


def _drop_channels(wl: np.ndarray, fwhm: np.ndarray, removed_1based: list[int]
                   ) -> tuple[np.ndarray, np.ndarray]:
    keep = np.ones(wl.size, dtype=bool)
    keep[np.asarray(removed_1based) - 1] = False
    return wl[keep], fwhm[keep]


def _ranges(*spans: tuple[int, int]) -> list[int]:
    """1-based inclusive channel ranges -> list of channel numbers."""
    return [c for a, b in spans for c in range(a, b + 1)]


# --- AVIRIS (classic, 224 channels) ------------------------------------------------------------
# Anchor points per spectrometer, (first channel, last channel, first centre nm, last centre nm).
# Spectrometer A's start and spacing (400 nm, ~9.8 nm) match the centres shipped with the 1992
# Indian Pines data; the other anchors are nominal values placed so that the removed water-vapour
# channels of the benchmark scenes fall where they are documented to be (104-108 ~1360-1420 nm,
# 150-163 ~1820-1950 nm, 220 ~2460 nm) and channel 224 ends at 2500 nm. Real AVIRIS spectrometers
# overlap by a few channels at their joins; here the joins are made monotone.
_AVIRIS_SPECTROMETERS = (
    (1, 32, 400.0, 704.0),     # A: silicon, visible
    (33, 96, 713.5, 1300.0),   # B: InGaAs, near infrared
    (97, 160, 1310.0, 1920.0),  # C: InSb, SWIR 1
    (161, 224, 1930.0, 2500.0),  # D: InSb, SWIR 2
)


def _aviris_224() -> tuple[np.ndarray, np.ndarray]:
    wl = np.concatenate([_linear(w0, w1, c1 - c0 + 1) for c0, c1, w0, w1 in _AVIRIS_SPECTROMETERS])
    # AVIRIS band widths are ~10 nm, about one sampling interval.
    return wl, _spacing_fwhm(wl)


_AVIRIS_SOURCE = (
    "AVIRIS 224-channel grid " + _APPROX + ": four spectrometers A-D (channels 1-32, 33-96, "
    "97-160, 161-224), each a linear grid between nominal end points (400-704, 713.5-1300, "
    "1310-1920, 1930-2500 nm); FWHM = local spacing (~9-10 nm). Real per-flight calibration "
    "tables differ by a few nm and overlap at the spectrometer joins."
)

# Indian Pines was distributed with 220 channels (Indian_pines.mat), not 224, and its removed
# channels 104-108, 150-163 and 220 are numbered in that 220-channel list (220 - 20 = 200; the same
# numbers taken from the 224 grid would leave 204). Its grid: spectrometer A's first and 31st
# centres as shipped with the data (400.02 and 696.50 nm), the other joins nominal as above.
_AVIRIS_220_SPECTROMETERS = (
    (1, 31, 400.02, 696.50),
    (32, 95, 706.0, 1270.0),
    (96, 159, 1280.0, 1890.0),
    (160, 220, 1900.0, 2500.0),
)
_IP_REMOVED = _ranges((104, 108), (150, 163), (220, 220))


def _aviris_220() -> tuple[np.ndarray, np.ndarray]:
    wl = np.concatenate([_linear(w0, w1, c1 - c0 + 1)
                         for c0, c1, w0, w1 in _AVIRIS_220_SPECTROMETERS])
    return wl, _spacing_fwhm(wl)


def _aviris_indian_pines() -> tuple[np.ndarray, np.ndarray]:
    return _drop_channels(*_aviris_220(), _IP_REMOVED)
_SALINAS_REMOVED = _ranges((108, 112), (154, 167), (224, 224))
# KSC: the data's documentation says only "176 bands after removing water absorption and low-SNR
# bands". A band-removal list used in public code (channels 1-4, 102-110, 136-153, 198-210)
# leaves 180; the four last, noisiest SWIR channels (221-224) are removed too to reach 176.
_KSC_REMOVED = _ranges((1, 4), (102, 110), (136, 153), (198, 210), (221, 224))


def _aviris_subset(removed: list[int]) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
    def build() -> tuple[np.ndarray, np.ndarray]:
        return _drop_channels(*_aviris_224(), removed)
    return build


# --- Hyperion (EO-1), 242 channels -------------------------------------------------------------
def _hyperion_242() -> tuple[np.ndarray, np.ndarray]:
    # Published nominal centres: VNIR channels 1-70 from 355.59 to 1057.68 nm, SWIR channels
    # 71-242 from 851.92 to 2577.08 nm, both on uniform ~10 nm steps. The VNIR/SWIR overlap is
    # never inside the Botswana selection (VNIR <= channel 55, SWIR >= channel 82).
    vnir = _linear(355.59, 1057.68, 70)
    swir = _linear(851.92, 2577.08, 172)
    wl = np.concatenate([vnir, swir])
    return wl, np.full(wl.size, 10.9)  # ~10.9 nm average FWHM reported for Hyperion


def _hyperion_botswana() -> tuple[np.ndarray, np.ndarray]:
    wl, fwhm = _hyperion_242()
    keep = np.asarray(_ranges((10, 55), (82, 97), (102, 119), (134, 164), (187, 220))) - 1
    return wl[keep], fwhm[keep]


# --- ROSIS -------------------------------------------------------------------------------------
def _rosis(n: int) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
    def build() -> tuple[np.ndarray, np.ndarray]:
        # ROSIS-03 records 115 channels over 430-860 nm (~4 nm bands); the benchmark cubes keep
        # 103 (Pavia University) or 102 (Pavia Centre) after dropping noisy channels, and which
        # ones were dropped is not published, so the kept bands are spread over the full range.
        wl = _linear(430.0, 860.0, n)
        return wl, np.full(n, 4.0)
    return build


# --- Current spaceborne imaging spectrometers --------------------------------------------------
def _merge_vnir_swir(vnir: np.ndarray, swir: np.ndarray, fv: np.ndarray, fs: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    # Keep the VNIR bands across the overlap (better SNR there) and the SWIR bands beyond it, so
    # the list is strictly increasing.
    keep = swir > vnir[-1]
    return np.concatenate([vnir, swir[keep]]), np.concatenate([fv, fs[keep]])


def _enmap() -> tuple[np.ndarray, np.ndarray]:
    vnir = _linear(420.0, 1000.0, 91)   # ~6.5 nm sampling
    swir = _linear(900.0, 2450.0, 133)  # ~10 nm sampling (nominal), 133 channels
    return _merge_vnir_swir(vnir, swir, np.full(91, 8.1), np.full(133, 12.4))


def _prisma() -> tuple[np.ndarray, np.ndarray]:
    vnir = _linear(400.0, 1010.0, 66)   # <= 12 nm sampling
    swir = _linear(920.0, 2505.0, 173)
    return _merge_vnir_swir(vnir, swir, _spacing_fwhm(vnir), _spacing_fwhm(swir))


def _emit() -> tuple[np.ndarray, np.ndarray]:
    wl = _linear(381.0, 2493.0, 285)  # ~7.4 nm sampling
    return wl, np.full(wl.size, 8.5)


def _desis() -> tuple[np.ndarray, np.ndarray]:
    wl = 400.0 + 2.55 * np.arange(235, dtype=np.float64)  # 400-997 nm
    return wl, np.full(wl.size, 3.5)


# --- Sentinel-2 MSI (multispectral) ------------------------------------------------------------
# Sentinel-2A central wavelengths and bandwidths (nm) from ESA's MSI spectral response functions
# (S2-SRF document, as listed in the Sentinel-2 user handbook / SentiWiki).
_S2_BANDS = (
    ("B1", 442.7, 21.0), ("B2", 492.4, 66.0), ("B3", 559.8, 36.0), ("B4", 664.6, 31.0),
    ("B5", 704.1, 15.0), ("B6", 740.5, 15.0), ("B7", 782.8, 20.0), ("B8", 832.8, 106.0),
    ("B8A", 864.7, 21.0), ("B9", 945.1, 20.0), ("B10", 1373.5, 31.0), ("B11", 1613.7, 91.0),
    ("B12", 2202.4, 175.0),
)


def _sentinel2() -> tuple[np.ndarray, np.ndarray]:
    return (np.array([b[1] for b in _S2_BANDS], dtype=np.float64),
            np.array([b[2] for b in _S2_BANDS], dtype=np.float64))


# name -> (builder, description, source, band names)
_PRESETS: dict[str, tuple[Callable[[], tuple[np.ndarray, np.ndarray]], str, str,
                          tuple[str, ...] | None]] = {
    "aviris": (
        _aviris_224,
        "AVIRIS (classic, JPL): 224 contiguous channels over ~400-2500 nm at ~10 nm.",
        _AVIRIS_SOURCE, None),
    "aviris_indian_pines": (
        _aviris_indian_pines,
        "AVIRIS bands of Indian_pines_corrected (200): the 220 channels of the 1992 Indian Pines "
        "data (Indian_pines.mat) less the water-absorption channels 104-108, 150-163 and 220 "
        "(1-based, numbered in the 220-channel list).",
        "Channel selection as documented with the Indian Pines data (UPV/EHU GIC page). Centres "
        + _APPROX + ": a 220-channel grid of four linear spectrometer segments (1-31: "
        "400.02-696.50 nm as shipped with the data, 32-95: 706-1270, 96-159: 1280-1890, "
        "160-220: 1900-2500 nm); FWHM = local spacing.", None),
    "aviris_salinas": (
        _aviris_subset(_SALINAS_REMOVED),
        "AVIRIS bands of Salinas_corrected (204): the 224 channels less 108-112, 154-167 and 224 "
        "(1-based).",
        "Channel selection as documented with the Salinas data (UPV/EHU GIC page); centres from "
        "the 'aviris' grid, " + _APPROX + ".", None),
    "aviris_ksc": (
        _aviris_subset(_KSC_REMOVED),
        "AVIRIS bands of Kennedy Space Center (176). The data's documentation only states that "
        "water-absorption and low-SNR bands were removed; this preset removes channels 1-4, "
        "102-110, 136-153, 198-210 and 221-224 (1-based).",
        "APPROXIMATE channel selection: the removal list 1-4, 102-110, 136-153, 198-210 is one "
        "used in public code and leaves 180 channels; 221-224 (noisy SWIR end) are removed as "
        "well to match the published count of 176. Centres from the 'aviris' grid, " + _APPROX
        + ".", None),
    "rosis": (
        _rosis(103),
        "ROSIS-03 bands of Pavia University: 103 bands over 430-860 nm (~4 nm wide).",
        "ROSIS-03 range 430-860 nm and ~4 nm band width (published); the 103 kept bands are "
        "spread uniformly over the range, " + _APPROX + " (which 12 of the 115 channels were "
        "dropped is not published).", None),
    "rosis_pavia_centre": (
        _rosis(102),
        "ROSIS-03 bands of Pavia Centre: 102 bands over 430-860 nm (~4 nm wide).",
        "ROSIS-03 range 430-860 nm and ~4 nm band width (published); the 102 kept bands are "
        "spread uniformly over the range, " + _APPROX + ".", None),
    "hyperion_botswana": (
        _hyperion_botswana,
        "EO-1 Hyperion bands of Botswana (145): channels 10-55, 82-97, 102-119, 134-164 and "
        "187-220 of Hyperion's 242 ~10 nm channels.",
        "Channel list as published with the Botswana data (UPV/EHU GIC page). Centres from the "
        "nominal Hyperion formula (VNIR 1-70: 355.59-1057.68 nm, SWIR 71-242: 851.92-2577.08 nm, "
        "uniform steps); FWHM a constant 10.9 nm (reported average). Per-detector calibrated "
        "centres differ by up to a few nm.", None),
    "enmap": (
        _enmap,
        "EnMAP HSI: VNIR 420-1000 nm at ~6.5 nm (91 channels) and SWIR 900-2450 nm at ~10 nm "
        "(133 channels). SWIR channels inside the VNIR range (<= 1000 nm) are left out so the "
        "list is strictly increasing: 215 bands.",
        "EnMAP mission specification (range, sampling, channel counts), " + _APPROX + "; FWHM "
        "8.1 nm (VNIR) and 12.4 nm (SWIR) nominal averages.", None),
    "prisma": (
        _prisma,
        "PRISMA (ASI): VNIR 400-1010 nm (66 channels) and SWIR 920-2505 nm (173 channels), "
        "<= 12 nm sampling. SWIR channels inside the VNIR range are left out so the list is "
        "strictly increasing.",
        "PRISMA mission specification (range, channel counts), " + _APPROX + "; FWHM = local "
        "spacing.", None),
    "emit": (
        _emit,
        "EMIT (ISS): 285 channels over 381-2493 nm at ~7.4 nm.",
        "EMIT L2A product description (range 381-2493 nm, 285 channels), " + _APPROX + "; FWHM "
        "8.5 nm nominal. The product files carry the exact per-band centres.", None),
    "desis": (
        _desis,
        "DESIS (ISS): 235 channels over 400-1000 nm at ~2.55 nm.",
        "DESIS specification (400-1000 nm, 2.55 nm sampling, 235 channels), " + _APPROX + "; "
        "FWHM 3.5 nm nominal.", None),
    "sentinel2_msi": (
        _sentinel2,
        "Sentinel-2 MSI, 13 multispectral bands B1-B12 incl. B8A, in wavelength order.",
        "Sentinel-2A central wavelengths and bandwidths from ESA's published MSI spectral "
        "response functions (bandwidth given as FWHM; Sentinel-2B differs by <= 3 nm).",
        tuple(b[0] for b in _S2_BANDS)),
}


def _normalise(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def list_sensors() -> list[str]:
    """Names of the known sensor presets, sorted.

    Returns:
        Preset names accepted by :func:`get_sensor`.
    """
    return sorted(_PRESETS)


@lru_cache(maxsize=None)
def _build(key: str) -> SensorPreset:
    builder, description, source, band_names = _PRESETS[key]
    wl, fwhm = builder()
    wl = np.ascontiguousarray(wl, dtype=np.float64)
    fwhm = np.ascontiguousarray(fwhm, dtype=np.float64)
    # The preset is cached and shared: make its arrays read-only so no caller can change it.
    wl.setflags(write=False)
    fwhm.setflags(write=False)
    return SensorPreset(name=key, wavelengths=wl, fwhm=fwhm, description=description,
                        source=source, band_names=band_names)


def get_sensor(name: str) -> SensorPreset:
    """Look up a sensor preset by name.

    Args:
        name: Preset name, case-insensitive ("-" and spaces count as "_").

    Returns:
        The preset; its arrays are read-only (copy them to modify).

    Raises:
        UnknownSensorError: (a KeyError and a ValueError) when no preset has that name; the
            message lists the known names.
    """
    if not isinstance(name, str):
        raise UnknownSensorError(
            f"Sensor names are strings; got {type(name).__name__}. Known sensors: "
            f"{', '.join(list_sensors())}.")
    key = _normalise(name)
    if key not in _PRESETS:
        raise UnknownSensorError(
            f"Unknown sensor {name!r}. Known sensors: {', '.join(list_sensors())}. For another "
            "sensor pass its band centre wavelengths (nm) explicitly.")
    return _build(key)
