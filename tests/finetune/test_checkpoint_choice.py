"""finetune's default weights: the published checkpoint that suits the scene, and it says which."""
from __future__ import annotations

import pytest

from hsizoo.finetune.inputs import build_model, pick_checkpoint


def test_in_domain_weights_are_picked_for_their_sensor() -> None:
    tag, why = pick_checkpoint("s2former_tiny", "aviris_indian_pines")
    assert tag == "s2former_tiny.ssl_indianpines" and "aviris_indian_pines" in why


def test_other_sensors_get_the_sensor_agnostic_default() -> None:
    for sensor in ("enmap", None):
        tag, why = pick_checkpoint("s2former_tiny", sensor)
        assert tag == "s2former_tiny.ssl_simulated" and "default" in why


def test_build_model_says_which_weights_and_why() -> None:
    m, desc = build_model("s2former_tiny", None, None, 4, "aviris_indian_pines")
    assert desc.startswith("s2former_tiny.ssl_indianpines") and "sensor" in desc
    assert m.num_classes == 4
    _, desc = build_model("s2former_tiny.ssl_simulated", None, None, 4, "aviris_indian_pines")
    assert desc == "s2former_tiny.ssl_simulated"  # an explicit tag is never second-guessed
    with pytest.raises(ValueError, match="no pretrained weights"):
        build_model("s2former_tiny.nonexistent", None, None, 4)


def test_architectures_without_weights_fall_back_or_refuse() -> None:
    with pytest.warns(UserWarning, match="random initialisation"):
        _, desc = build_model("s2former_test", None, None, 3, "enmap")
    assert desc == "random init"
    with pytest.raises(ValueError, match="pretrained=False"):
        build_model("s2former_test", True, None, 3, "enmap")


@pytest.mark.parametrize("sensor", ["aviris", "aviris_salinas", "aviris_ksc", "aviris_indian_pines"])
def test_an_aviris_cube_named_only_by_its_wavelengths_gets_the_aviris_weights(sensor: str) -> None:
    # No preset name: the sensor family is recognised from the band centres alone, so a cube
    # and its wavelengths get what the same cube named by its preset gets.
    from hsizoo.spectral.grid import resolve_wavelengths

    tag, why = pick_checkpoint("s2former_tiny", None, resolve_wavelengths(None, sensor))
    assert tag == "s2former_tiny.ssl_indianpines" and "bands match" in why


@pytest.mark.parametrize("sensor", ["enmap", "prisma", "emit", "desis", "hyperion_botswana",
                                    "rosis", "sentinel2_msi"])
def test_other_sensors_named_by_wavelengths_get_the_default(sensor: str) -> None:
    # Dense 10 nm grids (PRISMA, Hyperion, EnMAP's SWIR) cover AVIRIS's range but are other
    # instruments: their band centres sit a quarter of a band or more from AVIRIS's.
    from hsizoo.spectral.grid import resolve_wavelengths

    tag, why = pick_checkpoint("s2former_tiny", None, resolve_wavelengths(None, sensor))
    assert tag == "s2former_tiny.ssl_simulated" and "none pretrained on a sensor matching" in why


def test_band_match_measures_spacing_offset_and_range() -> None:
    import numpy as np

    from hsizoo.finetune.inputs import band_match

    ref = np.arange(400.0, 2500.0, 10.0)
    assert band_match(ref + 1.0, ref)["same_sensor"]
    assert not band_match(ref + 5.0, ref)["same_sensor"]           # half a band off
    assert not band_match(np.arange(400.0, 2500.0, 5.0), ref)["same_sensor"]  # other spacing
    assert not band_match(np.arange(400.0, 3500.0, 10.0), ref)["same_sensor"]  # beyond its range
    assert band_match(ref[:2], ref[:1])["same_sensor"] is False      # too few bands to tell


def test_finetune_on_a_bare_cube_records_the_weights_it_chose() -> None:
    from hsizoo.finetune.inputs import build_model
    from hsizoo.spectral.grid import resolve_wavelengths

    wl = resolve_wavelengths(None, "aviris_salinas")
    _, desc = build_model("s2former_tiny", None, None, 4, None, scene_wavelengths=wl)
    assert desc.startswith("s2former_tiny.ssl_indianpines") and "bands match" in desc
