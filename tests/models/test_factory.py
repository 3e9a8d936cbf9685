"""Model factory: names from timm's registry, saved folders, errors, FLOPs counting."""
from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from timm.models import model_entrypoint

from hsizoo.models._factory import (
    count_flops_per_pixel,
    create_model,
    is_hsizoo_model,
    list_models,
    list_pretrained,
)
from hsizoo.hub.save import save_pretrained
from hsizoo.spectral.sensors import get_sensor


def test_list_models_reads_hsizoos_part_of_the_timm_registry() -> None:
    names = list_models()
    assert {"s2former_test", "s2former_tiny", "s2former_small", "s2former_base"} <= set(names)
    expected = sorted(n for n in timm.list_models()
                      if model_entrypoint(n).__module__.startswith("hsizoo."))
    assert names == expected
    assert "resnet18" not in names and "vit_base_patch16_224" not in names
    assert list_models("s2former_t*") == ["s2former_test", "s2former_tiny"]
    assert all(is_hsizoo_model(n) for n in names) and not is_hsizoo_model("resnet18")


def test_list_pretrained_matches_registered_weights() -> None:
    got = list_pretrained()
    expected = [n for n in timm.list_pretrained() if n.split(".")[0] in list_models()]
    assert got == sorted(expected)
    assert all("." in n for n in got)


@pytest.mark.parametrize("name", list_models())
def test_every_model_round_trips_through_a_saved_folder(name: str, tmp_path) -> None:
    model = create_model(name, num_classes=3).eval()
    folder = save_pretrained(model, tmp_path / name)
    loaded = create_model(folder).eval()
    assert type(loaded) is type(model) and loaded.model_args == model.model_args
    wl = get_sensor("rosis").wavelengths
    p = model.patch_size
    x = torch.randn(2, wl.size, p, p)
    with torch.no_grad():
        assert torch.equal(model(x, wavelengths=wl), loaded(x, wavelengths=wl))


def test_folder_kwargs_override_saved_arguments(tmp_path) -> None:
    folder = save_pretrained(create_model("s2former_test", num_classes=3), tmp_path / "f")
    model = create_model(folder, num_classes=9)
    assert model.num_classes == 9 and model.head.out_features == 9


def test_unknown_names_are_helpful_errors(tmp_path) -> None:
    with pytest.raises(ValueError, match="Did you mean s2former_tiny") as err:
        create_model("s2former_tiyn")
    assert "s2former_base" in str(err.value)  # the whole zoo is listed
    with pytest.raises(ValueError, match="timm|hsizoo models"):
        create_model("resnet18")  # a timm model, but not hsizoo's
    with pytest.raises(ValueError, match="no pretrained tag 'nope'"):
        create_model("s2former_test.nope")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        create_model(str(tmp_path / "missing_folder"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        create_model(tmp_path / "empty")


def test_timm_create_model_works_after_import() -> None:
    import hsizoo  # noqa: F401

    model = timm.create_model("s2former_test", num_classes=2)
    assert model.num_classes == 2


def test_flops_per_pixel_counts_the_patch_forward() -> None:
    wl = get_sensor("aviris_indian_pines").wavelengths
    small = create_model("s2former_test")
    deeper = create_model("s2former_test", depth=3)
    f1 = count_flops_per_pixel(small, wl)
    assert f1 > 0 and f1 == count_flops_per_pixel(small, wl)  # deterministic
    assert small.training  # mode restored
    assert count_flops_per_pixel(deeper, wl) > f1
    # Fewer bands: less resampling work.
    assert count_flops_per_pixel(small, np.linspace(400, 2500, 20)) < f1
