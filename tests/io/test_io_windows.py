"""Windowed reading: blocks equal the full read, halos are clipped at edges, cores tile the scene."""
from __future__ import annotations

import numpy as np
import pytest
from conftest_io import make_cube, make_wavelengths, write_geotiff

from hsizoo.io import iter_windows, plan_windows, read_scene


@pytest.fixture
def tif(tmp_path):
    cube = make_cube(23, 17, 5)
    cube[:6, :6, :] = -1  # one fully-nodata 6 x 6 corner: the first 5 x 5 core window is empty
    return write_geotiff(tmp_path / "s.tif", cube, nodata=-1,
                         descriptions=[f"{v}" for v in make_wavelengths(5)])


@pytest.mark.parametrize("size,overlap,halo", [(5, 0, 0), (5, 0, 2), (8, 3, 4), (40, 0, 3),
                                               ((4, 6), 1, 1)])
def test_windowed_read_equals_full_read(tif, size, overlap, halo):
    full = read_scene(tif)
    covered = np.zeros(full.cube.shape[:2], dtype=int)
    for source in (tif, full):  # from disk (rasterio windows) and in memory
        covered[:] = 0
        for block in iter_windows(source, size, overlap=overlap, halo=halo):
            win, read = block.window, block.read_window
            r0, c0 = int(read.row_off), int(read.col_off)
            rows = slice(r0, r0 + int(read.height))
            cols = slice(c0, c0 + int(read.width))
            np.testing.assert_array_equal(block.cube, full.cube[rows, cols])
            np.testing.assert_array_equal(block.valid, full.valid[rows, cols])
            # the halo is at most `halo` on every side and clipped at the scene edges
            assert int(win.row_off) - r0 == min(halo, int(win.row_off))
            assert int(win.col_off) - c0 == min(halo, int(win.col_off))
            core = block.crop(block.cube)
            assert core.shape[:2] == (int(win.height), int(win.width))
            wr, wc = int(win.row_off), int(win.col_off)
            np.testing.assert_array_equal(core, full.cube[wr:wr + core.shape[0], wc:wc + core.shape[1]])
            covered[wr:wr + core.shape[0], wc:wc + core.shape[1]] += 1
        assert covered.min() >= 1  # every pixel belongs to some core window
        if overlap == 0:
            assert covered.max() == 1  # and to exactly one without overlap


def test_unpacks_as_window_cube_valid(tif):
    window, cube, valid, *_ = next(iter(iter_windows(tif, 8)))
    assert cube.shape == (8, 8, 5) and valid.shape == (8, 8) and window.width == 8


def test_empty_windows_policy(tif):
    n_all = len(list(iter_windows(tif, 5)))
    assert n_all == 5 * 4
    skipped = list(iter_windows(tif, 5, on_empty="skip"))
    assert len(skipped) == n_all - 1
    assert all(b.crop(b.valid).any() for b in skipped)
    with pytest.raises(ValueError, match="no valid pixel"):
        list(iter_windows(tif, 5, on_empty="raise"))
    with pytest.raises(ValueError, match="on_empty"):
        list(iter_windows(tif, 5, on_empty="drop"))


def test_plan_windows_arguments():
    assert len(plan_windows(10, 10, 4)) == 9
    with pytest.raises(ValueError, match="overlap"):
        plan_windows(10, 10, 4, overlap=4)
    with pytest.raises(ValueError, match="halo"):
        plan_windows(10, 10, 4, halo=-1)
    with pytest.raises(ValueError, match="window_size"):
        plan_windows(10, 10, 0)


def test_plan_windows_can_cover_a_band_of_rows_with_context_around_it() -> None:
    plan = plan_windows(30, 10, (4, 6), halo=3, rows=(9, 18))
    cores = sorted({(int(w.row_off), int(w.height)) for w, _, _ in plan})
    assert cores == [(9, 4), (13, 4), (17, 1)]  # rows 9..17 only, the last window clipped
    for win, read, (rs, cs) in plan:
        # the halo reaches outside the band (context), clipped at the grid's edges only
        assert read.row_off == win.row_off - 3 and read.row_off + read.height == min(
            30, win.row_off + win.height + 3)
        assert rs.start == 3 and rs.stop - rs.start == win.height
    assert plan_windows(30, 10, 8, rows=(5, 5)) == []
    with pytest.raises(ValueError, match="rows"):
        plan_windows(30, 10, 8, rows=(20, 31))
