"""Inputs that used to give a wrong result without a word: undeclared fill values in a cube,
0-based class ids beside a declared label nodata, band numbers read as micrometres, unchecked
reference labels, a saved model reported as a random initialisation, and a label map that did
not replace the scene's own labels for evaluate()."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from scenes import WL, three_class_scene

FAST = dict(model="s2former_test", pretrained=False, steps=2, head_steps=2, daft=False,
            progress=False)


def test_undeclared_fill_values_are_refused_and_nodata_declares_them() -> None:
    import hsizoo

    s = three_class_scene()
    cube = s.cube.copy()
    cube[:, :2] = -9999.0  # a fill value nobody declared, in every band
    with pytest.raises(ValueError, match=r"40 valid pixel\(s\).*-9999.*nodata=-9999"):
        hsizoo.finetune(cube, s.labels, shots=3, wavelengths=WL, **FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # shots on the fill pixels are ignored, with a warning
        ft = hsizoo.finetune(cube, s.labels, shots=3, wavelengths=WL, nodata=-9999, **FAST)
    assert not ft.scene.valid[:, :2].any() and ft.scene.valid[:, 2:].all()
    assert (ft.predict(progress=False).class_map[:, :2] == 0).all()  # not classified
    with pytest.raises(ValueError, match="hold one value in every band"):
        ft.predict(cube, wavelengths=WL, progress=False)  # a new scene with the same fill


def test_a_declared_label_nodata_beside_zeros_warns_about_0_based_classes(tmp_path) -> None:
    import rasterio

    from hsizoo.io import read_labels

    lab = np.zeros((6, 5), np.uint8)
    lab[2:4], lab[4:] = 1, 255
    path = tmp_path / "lab.tif"
    with rasterio.open(path, "w", driver="GTiff", height=6, width=5, count=1, dtype="uint8",
                       nodata=255) as ds:
        ds.write(lab, 1)
    with pytest.warns(UserWarning, match=r"numbered from 0 \(0..K-1\), add 1"):
        out = read_labels(path)
    assert (out[4:] == 0).all() and (out[2:4] == 1).all()


def test_band_numbers_in_descriptions_are_not_wavelengths(tmp_path) -> None:
    import rasterio

    from hsizoo.io import read_scene

    path = tmp_path / "numbered.tif"
    with rasterio.open(path, "w", driver="GTiff", height=4, width=4, count=12,
                       dtype="float32") as ds:
        ds.write(np.ones((12, 4, 4), np.float32))
        for b in range(1, 13):
            ds.set_band_description(b, str(b))
    with pytest.raises(ValueError, match="wavelength"):
        read_scene(path)
    assert np.allclose(read_scene(path, wavelengths=WL).wavelengths, WL)


def test_evaluate_refuses_fill_values_and_unknown_classes_in_the_reference() -> None:
    from hsizoo.data.metrics import evaluate

    ref = np.array([[1, 2], [2, 1]] * 8)
    pred = ref.copy()
    assert evaluate(ref, pred, num_classes=2).oa == 1.0
    filled = ref.copy()
    filled[0] = 255
    with pytest.raises(ValueError, match="255"):
        evaluate(filled, pred, num_classes=2)
    unknown = ref.copy()
    unknown[0, 0] = 3
    with pytest.raises(ValueError, match=r"id\(s\) 3 \(1 pixels\) above the 2 classes"):
        evaluate(unknown, pred, num_classes=2)
    with pytest.raises(ValueError, match="NaN"):
        evaluate(np.where(ref == 1, np.nan, ref), pred, num_classes=2)


def test_finetune_from_a_saved_folder_says_so_and_starts_from_its_weights(tmp_path) -> None:
    import torch

    import hsizoo

    s = three_class_scene()
    first = hsizoo.finetune(s, shots=3, **FAST)
    folder = tmp_path / "v1.2" / "model"  # a dot in the path, too
    first.save_pretrained(folder)
    second = hsizoo.finetune(s, shots=3, model=str(folder), steps=0, head_steps=0, daft=False,
                             progress=False)
    assert second.history["weights"] == f"saved model {folder}"
    a, b = first.model.state_dict(), second.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a if not k.startswith("head"))
    with pytest.raises(ValueError, match="own weights"):
        hsizoo.finetune(s, shots=3, model=str(folder), pretrained=False, steps=0, head_steps=0,
                        daft=False, progress=False)


def test_a_full_label_map_replaces_the_scenes_own_labels_for_evaluate() -> None:
    import hsizoo

    s = three_class_scene()  # carries its own labels
    other = s.labels.copy()
    other[:, :3] = 2  # a corrected map
    ft = hsizoo.finetune(s, other, shots=3, **FAST)
    np.testing.assert_array_equal(ft.scene.labels, other)
    assert ft.evaluate().oa == ft.evaluate(other).oa


def test_streamed_predict_lets_the_files_wavelengths_win_over_sensor(tmp_path) -> None:
    import rasterio
    from rasterio.transform import from_origin

    import hsizoo

    s = three_class_scene()
    path = tmp_path / "scene.tif"
    with rasterio.open(path, "w", driver="GTiff", height=20, width=18, count=WL.size,
                       dtype="float32", crs="EPSG:32616",
                       transform=from_origin(500_000, 4.2e6, 20, 20)) as ds:
        ds.write(np.moveaxis(s.cube, 2, 0))
        ds.update_tags(ns="ENVI", wavelength="{" + ",".join(f"{v:g}" for v in WL) + "}",
                       **{"wavelength units": "Nanometers"})
    ft = hsizoo.finetune(s, shots=3, **FAST)
    # The file names its bands: a sensor preset (of another band count) is only a fallback,
    # as in read_scene, and the streamed map equals the in-memory one.
    res = ft.predict(str(path), out_path=tmp_path / "map.tif", sensor="enmap", progress=False)
    with rasterio.open(tmp_path / "map.tif") as ds:
        streamed = ds.read(1)
    np.testing.assert_array_equal(streamed, ft.predict(str(path), progress=False).class_map)
    assert res.seconds >= 0


def test_streamed_predict_refuses_an_undeclared_fill_value_and_writes_nothing(tmp_path) -> None:
    import rasterio
    from rasterio.transform import from_origin

    import hsizoo

    s = three_class_scene()
    ft = hsizoo.finetune(s, shots=3, **FAST)
    cube = s.cube.copy()
    cube[:, -3:] = -9999.0
    path = tmp_path / "filled.tif"
    with rasterio.open(path, "w", driver="GTiff", height=20, width=18, count=WL.size,
                       dtype="float32", crs="EPSG:32616",
                       transform=from_origin(500_000, 4.2e6, 20, 20)) as ds:
        ds.write(np.moveaxis(cube, 2, 0))
        ds.update_tags(ns="ENVI", wavelength="{" + ",".join(f"{v:g}" for v in WL) + "}",
                       **{"wavelength units": "Nanometers"})
    with pytest.raises(ValueError, match=r"-9999 \(60 pixels\)"):
        ft.predict(str(path), out_path=tmp_path / "map.tif", progress=False)
    assert not (tmp_path / "map.tif").exists()
    with rasterio.open(path, "r+") as ds:  # declared in the file: those pixels are nodata
        ds.nodata = -9999.0
    res = ft.predict(str(path), out_path=tmp_path / "map.tif", progress=False)
    with rasterio.open(tmp_path / "map.tif") as ds:
        assert (ds.read(1)[:, -3:] == 0).all() and (ds.read(1)[:, :-3] > 0).all()
    assert res.seconds >= 0
