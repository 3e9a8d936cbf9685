"""Tests of the sensor presets (hsizoo.spectral.sensors)."""
from __future__ import annotations

import numpy as np
import pytest

from hsizoo.spectral.sensors import SensorPreset, UnknownSensorError, get_sensor, list_sensors

EXPECTED_BANDS = {
    "aviris": 224,
    "aviris_indian_pines": 200,
    "aviris_salinas": 204,
    "aviris_ksc": 176,
    "rosis": 103,
    "rosis_pavia_centre": 102,
    "hyperion_botswana": 145,
    "emit": 285,
    "desis": 235,
    "sentinel2_msi": 13,
}


def test_all_expected_presets_listed() -> None:
    names = list_sensors()
    assert names == sorted(names)
    for name in [*EXPECTED_BANDS, "enmap", "prisma"]:
        assert name in names


@pytest.mark.parametrize("name", list_sensors())
def test_preset_is_well_formed(name: str) -> None:
    p = get_sensor(name)
    assert isinstance(p, SensorPreset)
    assert p.name == name
    assert p.wavelengths.dtype == np.float64 and p.wavelengths.ndim == 1
    assert np.all(np.diff(p.wavelengths) > 0), "band centres must be strictly increasing"
    assert p.fwhm is not None and p.fwhm.shape == p.wavelengths.shape
    assert np.all(p.fwhm > 0)
    assert 300 < p.wavelengths[0] and p.wavelengths[-1] < 2600
    assert p.description and p.source
    assert p.num_bands == p.wavelengths.size
    with pytest.raises(ValueError):  # shared cached arrays are read-only
        p.wavelengths[0] = 1.0


@pytest.mark.parametrize("name,bands", sorted(EXPECTED_BANDS.items()))
def test_band_counts(name: str, bands: int) -> None:
    assert get_sensor(name).wavelengths.size == bands


def test_approximate_presets_say_so() -> None:
    for name in ["aviris", "aviris_indian_pines", "aviris_ksc", "rosis", "enmap", "prisma",
                 "emit", "desis"]:
        assert "approximat" in get_sensor(name).source.lower(), name


def test_current_sensor_ranges() -> None:
    enmap = get_sensor("enmap").wavelengths
    assert 200 <= enmap.size <= 224 and enmap[0] == pytest.approx(420) and enmap[-1] == 2450
    prisma = get_sensor("prisma").wavelengths
    assert 220 <= prisma.size <= 239 and prisma[0] == 400
    emit = get_sensor("emit").wavelengths
    assert emit[0] == 381 and emit[-1] == 2493
    assert np.median(np.diff(emit)) == pytest.approx(7.43, abs=0.1)
    desis = get_sensor("desis").wavelengths
    assert np.diff(desis) == pytest.approx(2.55)
    assert 995 < desis[-1] <= 1000


def test_aviris_subsets_are_the_documented_channels() -> None:
    full = get_sensor("aviris").wavelengths
    assert full[0] == pytest.approx(400, abs=1) and full[-1] == pytest.approx(2500, abs=1)
    # Indian Pines channels are numbered in its own 220-channel list: 104-108 is the gap after
    # 103 kept bands, and the removed ranges sit on the 1400 nm and 1900 nm water bands.
    ip = get_sensor("aviris_indian_pines").wavelengths
    gaps = np.flatnonzero(np.diff(ip) > 20)
    assert gaps.tolist() == [102, 143]
    assert 1320 < ip[102] < 1360 and 1400 < ip[103] < 1450
    assert 1780 < ip[143] < 1810 and 1930 < ip[144] < 1980
    assert ip[0] == pytest.approx(400.02) and 2480 < ip[-1] < 2500
    # The removed channels 104-108 and 150-163 of the 224 grid are where water vapour absorbs.
    assert 1340 < full[103] < 1400 and 1800 < full[149] < 1850 and 1920 < full[162] < 1970
    sal = get_sensor("aviris_salinas").wavelengths
    idx = np.searchsorted(full, np.setdiff1d(full, sal)) + 1
    assert idx.tolist() == [*range(108, 113), *range(154, 168), 224]


def test_hyperion_botswana_channels() -> None:
    p = get_sensor("hyperion_botswana")
    # Channel 10 and 55 of the nominal VNIR grid, 82 of the SWIR grid.
    assert p.wavelengths[0] == pytest.approx(447.17, abs=0.05)
    assert p.wavelengths[45] == pytest.approx(905.05, abs=0.05)
    assert p.wavelengths[46] == pytest.approx(962.91, abs=0.05)


def test_sentinel2_real_centres() -> None:
    p = get_sensor("sentinel2_msi")
    assert p.band_names is not None and p.band_names[8] == "B8A"
    assert p.wavelengths[3] == pytest.approx(664.6)  # B4 red
    assert p.fwhm[7] == pytest.approx(106.0)  # B8 broad NIR


def test_lookup_is_case_insensitive() -> None:
    assert get_sensor("AVIRIS_Indian_Pines") is get_sensor("aviris_indian_pines")
    assert get_sensor("Sentinel2-MSI").name == "sentinel2_msi"


def test_unknown_sensor_lists_names() -> None:
    with pytest.raises(ValueError) as err:
        get_sensor("landsat99")
    msg = str(err.value)
    assert "landsat99" in msg
    for name in list_sensors():
        assert name in msg
    assert isinstance(err.value, KeyError) and isinstance(err.value, UnknownSensorError)
    with pytest.raises(KeyError):
        get_sensor("nope")
