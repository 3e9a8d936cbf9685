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
