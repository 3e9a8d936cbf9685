"""README's quick start, run verbatim on a small georeferenced scene."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[2] / "README.md"


def _quick_start() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def _write_inputs(folder: Path) -> np.ndarray:
    """flightline.tif (24 x 22 pixels, 12 bands with wavelengths) and labels.tif."""
    import rasterio
    from affine import Affine

    rng = np.random.default_rng(0)
    h, w = 24, 22
    wl = np.linspace(450.0, 2300.0, 12)
    labels = np.ones((h, w), np.uint8)
    labels[:, w // 3: 2 * w // 3], labels[:, 2 * w // 3:] = 2, 3
    x = np.linspace(0, 1, wl.size)
    spectra = np.stack([0.2 + 0.2 * x, 0.4 - 0.2 * x, 0.3 + 0.1 * np.sin(6 * x)])
    cube = spectra[labels - 1] + rng.normal(0, 0.02, (h, w, wl.size))
    profile = dict(driver="GTiff", height=h, width=w, crs="EPSG:32616",
                   transform=Affine(30, 0, 600000, 0, -30, 4000000))
    with rasterio.open(folder / "flightline.tif", "w", count=wl.size, dtype="float32",
                       **profile) as ds:
        ds.write(np.moveaxis(cube.astype(np.float32), -1, 0))
        for i, v in enumerate(wl, 1):
            ds.update_tags(i, wavelength=f"{v:.3f}", wavelength_units="nm")
    with rasterio.open(folder / "labels.tif", "w", count=1, dtype="uint8", **profile) as ds:
        ds.write(labels, 1)
    return labels


def test_readme_quick_start_runs_verbatim(tmp_path, monkeypatch, capsys) -> None:
    import rasterio

    labels = _write_inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    code = _quick_start()
    assert "hsizoo.finetune(" in code and "result.evaluate()" in code
    exec(compile(code, "README.md quick start", "exec"), {})
    printed = capsys.readouterr().out
    oa = float(re.search(r"OA\s*[:=]?\s*([\d.]+)", printed).group(1))
    assert oa > (90.0 if oa > 1 else 0.9), printed
    with rasterio.open(tmp_path / "map.tif") as ds:
        assert ds.crs.to_epsg() == 32616
        assert ds.read(1).shape == labels.shape
    assert (tmp_path / "map.png").stat().st_size > 0
    assert (tmp_path / "my_model" / "model.safetensors").is_file()
