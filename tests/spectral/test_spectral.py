"""Canonical grid resampling, wavelength checks and band statistics."""
from __future__ import annotations

import numpy as np
import pytest

from hsizoo.spectral.sensors import get_sensor
from hsizoo.spectral.grid import (band_stats, canonical_resampler, check_wavelengths, make_grid,
                             resolve_wavelengths)


def test_grid_is_400_to_2500_every_10nm() -> None:
    g = make_grid()
    assert g[0] == 400 and g[-1] == 2500 and g.size == 211


def test_linear_spectrum_is_reproduced_where_covered() -> None:
    # Irregular sampling coarser than the grid: linear interpolation is exact on a line.
    wl = 420.0 + np.cumsum(np.random.default_rng(0).uniform(11, 15, 150))
    wl = wl[wl < 2400]
    res = canonical_resampler(wl)
    spectrum = 0.3 + 1e-4 * wl
    out = res.weights @ spectrum
    grid = make_grid()
    assert res.present.sum() > 180
    inside = res.present & (grid >= wl[0]) & (grid <= wl[-1])
    np.testing.assert_allclose(out[inside], 0.3 + 1e-4 * grid[inside], rtol=1e-5)
    # Within half a grid step beyond the edge band, the edge band is taken as it is.
    edge = res.present & ~inside
    assert edge.sum() <= 2
    assert np.all(out[~res.present] == 0)
    assert not res.present[grid < 420].any() and not res.present[grid > wl[-1] + 5].any()


def test_water_absorption_gaps_are_missing() -> None:
    wl = get_sensor("aviris_indian_pines").wavelengths
    res = canonical_resampler(wl)
    grid = make_grid()
    # Channels 150-163 (about 1800-1950 nm) are removed from the corrected cube.
    assert not res.present[(grid > 1830) & (grid < 1930)].any()
    assert res.present[(grid > 500) & (grid < 1300)].all()


def test_fine_sensor_is_box_averaged() -> None:
    wl = np.arange(400.0, 1000.0, 2.5)  # DESIS-like sampling, finer than the grid
    res = canonical_resampler(wl)
    row = res.weights[np.searchsorted(make_grid(), 600.0)]
    assert (row > 0).sum() >= 4 and np.isclose(row.sum(), 1.0)


def test_multispectral_covers_only_near_its_bands() -> None:
    res = canonical_resampler(get_sensor("sentinel2_msi").wavelengths)
    assert 0 < res.coverage < 0.5


@pytest.mark.parametrize("bad,match", [
    ([500, 400, 600], "strictly increasing"),
    ([0.45, 0.55, 0.65], "micrometres"),
    ([400, np.nan], "finite"),
])
def test_bad_wavelengths(bad, match) -> None:
    with pytest.raises(ValueError, match=match):
        check_wavelengths(bad)


def test_wavelength_count_must_match_bands() -> None:
    with pytest.raises(ValueError, match="3 wavelengths for data with 4 bands"):
        check_wavelengths([400, 500, 600], num_bands=4)


def test_no_coverage_is_refused() -> None:
    with pytest.raises(ValueError, match="cover no point"):
        canonical_resampler([3000.0, 3100.0, 3200.0])


def test_resolve_needs_wavelengths_or_sensor() -> None:
    with pytest.raises(ValueError, match="aviris_indian_pines"):
        resolve_wavelengths(None, None)
    assert resolve_wavelengths(sensor="rosis").size == 103


def test_band_stats_standardise_valid_pixels_only() -> None:
    rng = np.random.default_rng(0)
    cube = rng.normal(5.0, 2.0, size=(20, 20, 4)).astype(np.float32)
    valid = np.ones((20, 20), bool)
    cube[0, :] = 1e6  # nodata row
    valid[0, :] = False
    stats = band_stats(cube, valid)
    z = stats.apply(cube)[valid]
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(0), 1, atol=1e-4)
    with pytest.raises(ValueError, match="no valid pixel"):
        band_stats(cube, np.zeros_like(valid))
