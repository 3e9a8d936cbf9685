"""Inputs of few-shot fine-tuning: the scene, the label map and its shots, the backbone."""
from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch.nn as nn

from hsizoo.spectral.grid import canonical_resampler, resolve_wavelengths

__all__ = ["as_scene", "build_model", "check_coverage", "check_fill_values", "check_scene_valid",
           "load_label_map", "band_match", "pick_checkpoint", "prepare_labels", "weights_know_scene"]


def as_scene(scene_or_cube: Any, wavelengths: Sequence[float] | None, sensor: str | None,
             nodata: float | None = None) -> Any:
    """A Scene from a Scene, a raster / .mat path, or an (H, W, B) array with its wavelengths;
    ``nodata`` (the cube's fill value) marks pixels invalid on top of NaN/inf and a file's own
    declared nodata."""
    from hsizoo.io import Scene, read_scene
    from hsizoo.io.scene import axis_order_hint
    from hsizoo.io.validity import valid_mask

    if isinstance(scene_or_cube, Scene):
        if wavelengths is not None:
            from hsizoo.spectral.grid import as_wavelength_array

            scene_or_cube = replace(scene_or_cube, wavelengths=as_wavelength_array(wavelengths))
        if nodata is not None:
            scene_or_cube = replace(scene_or_cube, valid=scene_or_cube.valid
                                    & valid_mask(scene_or_cube.cube, nodata))
        return scene_or_cube
    if isinstance(scene_or_cube, (str, Path)):
        return read_scene(scene_or_cube, wavelengths=wavelengths, sensor=sensor, nodata=nodata)
    if type(scene_or_cube).__name__ == "DataArray":
        # an xarray DataArray (its wavelengths, CRS and transform: hsizoo.io.xarray)
        return as_scene(read_scene(scene_or_cube, wavelengths=wavelengths, sensor=sensor),
                        None, None, nodata)
    cube = np.asarray(scene_or_cube)
    if cube.ndim != 3:
        raise ValueError(f"Expected a Scene, a file path or an (H, W, bands) cube; got an array of "
                         f"shape {cube.shape}.")
    try:
        wl = resolve_wavelengths(wavelengths, sensor, num_bands=cube.shape[2])
    except ValueError as err:
        known = (len(wavelengths) if wavelengths is not None else _preset_bands(sensor))
        hint = axis_order_hint(cube.shape, known)
        if hint:
            raise ValueError(f"{err}{hint}") from err
        raise
    cube = cube.astype(np.float32, copy=False)
    return Scene(cube=cube, wavelengths=wl, sensor=sensor,
                 valid=None if nodata is None else valid_mask(cube, nodata))


def _preset_bands(sensor: str | None) -> int | None:
    """Band count of a sensor preset, or None (unknown preset or none named)."""
    if sensor is None:
        return None
    from hsizoo.spectral.sensors import get_sensor

    try:
        return len(get_sensor(sensor).wavelengths)
    except (KeyError, ValueError):
        return None


#: Largest class id: class maps are written as uint16 GeoTIFFs.
MAX_CLASS_ID = 65535


def check_scene_valid(scene: Any) -> None:
    """Refuse a scene without a single valid pixel, naming its nodata value and file: said before
    anything about the labels, which such a scene would otherwise be blamed on."""
    from hsizoo.io.validity import no_valid_pixel_message

    valid = getattr(scene, "valid", None)
    if valid is not None and not np.asarray(valid).any():
        nodata = (getattr(scene, "meta", None) or {}).get("nodata")
        raise ValueError(no_valid_pixel_message(scene.cube, nodata,
                                                scene.path or "(in memory)")
                         + " Nothing can be trained or predicted on it.")


def check_fill_values(scene: Any) -> None:
    """Refuse valid pixels that hold one value in every band (an undeclared fill value such as
    -9999: :func:`hsizoo.io.validity.flat_spectra`), naming the value and how to declare it.
    Prediction checks each window the same way (:func:`hsizoo.predict.engine.predict_scene`)."""
    from hsizoo.io.validity import flat_spectra, flat_spectra_message

    found = flat_spectra(scene.cube, np.asarray(scene.valid))
    if found:
        raise ValueError(flat_spectra_message(found, scene.path or "(in memory)"))


def load_label_map(labels: Any, scene: Any = None, nodata: float | None = None) -> np.ndarray:
    """An (H, W) label map from an array or a file holding one (GeoTIFF, .mat, .npy, .npz).

    A label raster's declared nodata value (or ``nodata``) marks unlabelled pixels, read as 0;
    values that cannot be class ids are refused (:func:`hsizoo.io.labels.check_label_ids`). A
    georeferenced label raster must lie on the scene's grid when the scene has one (same CRS
    and transform): the same shape on another grid labels the wrong pixels.
    """
    from hsizoo.io import read_labels

    if not isinstance(labels, (str, Path)):
        return np.asarray(labels) if nodata is None else read_labels(labels, nodata=nodata)
    lab = read_labels(labels, nodata=nodata)
    if scene is not None and getattr(scene, "crs", None) is not None \
            and Path(labels).suffix.lower() not in (".mat", ".npy", ".npz"):
        import rasterio

        with rasterio.open(Path(labels).expanduser()) as ds:
            crs, transform = ds.crs, ds.transform
        if crs is not None and (crs != scene.crs or not transform.almost_equals(scene.transform)):
            raise ValueError(
                f"The label raster {labels} is on another grid than the scene (CRS {crs} vs "
                f"{scene.crs}; transform {tuple(transform)[:6]} vs "
                f"{tuple(scene.transform)[:6]}): its pixels are not the scene's. Reproject or "
                "rasterise the labels onto the scene's grid first.")
    return lab


def prepare_labels(labels: Any, scene: Any, shots: int | None, seed: int,
                   class_names: Sequence[str] | None = None, *, nodata: float | None = None,
                   ) -> tuple[np.ndarray, int, list[str]]:
    """Check a label map against the scene and pick the training shots.

    A *full* label map gives ``shots`` pixels per class drawn with ``seed``
    (:func:`hsizoo.data.splits.few_shot_split`); ``shots=None`` treats the map as *sparse*: exactly the
    labelled pixels are the training set. A map whose classes all have at most ``shots`` pixels is
    therefore used whole either way.

    Args:
        labels: (H, W) integer map (0 = unlabelled), a file holding one, or None for
            ``scene.labels``.
        scene: The scene.
        shots: Pixels per class, or None for all labelled pixels.
        seed: Seed of the draw.
        class_names: Names of classes 1..K.
        nodata: Label value marking unlabelled pixels (read as 0); a label raster's own declared
            nodata is honoured without it.

    Returns:
        (training label map, K, class names).

    Raises:
        ValueError: a scene without any valid pixel (said first); labels missing, of another
            shape than the scene, not integer class ids (NaN, fractions, negative values, ids so
            sparse that the largest is a fill value), on invalid pixels only, or more class ids
            than class names.
    """
    from hsizoo.data.splits import few_shot_split

    check_scene_valid(scene)
    if labels is None:
        labels = scene.labels
        if labels is None:
            raise ValueError("No labels: pass labels= an (H, W) label map (0 = unlabelled, 1..K) "
                             "or a scene that carries .labels.")
    lab = load_label_map(labels, scene, nodata)
    if lab.shape != scene.cube.shape[:2]:
        raise ValueError(f"The label map has shape {lab.shape} but the scene is "
                         f"{scene.cube.shape[:2]} pixels: labels must cover exactly the scene's "
                         "grid (labels outside the scene cannot be used). Crop or rasterise them "
                         "onto the scene first.")
    if lab.dtype == bool:
        raise ValueError("Labels must be integer class ids (0 = unlabelled, 1..K); got a bool "
                         "mask. Turn it into class ids first (e.g. mask.astype(int)).")
    from hsizoo.io.labels import check_label_ids

    lab = check_label_ids(lab, labels if isinstance(labels, (str, Path)) else "the label map",
                          is_file=isinstance(labels, (str, Path)), max_id=MAX_CLASS_ID)
    on_invalid = (lab > 0) & ~scene.valid
    if on_invalid.any():
        warnings.warn(f"{int(on_invalid.sum())} labelled pixel(s) lie on invalid (nodata) pixels "
                      "of the scene and are ignored.", UserWarning, stacklevel=3)
        lab = np.where(scene.valid, lab, 0)
    if not (lab > 0).any():
        raise ValueError("The label map holds no labelled pixel on a valid pixel of the scene.")
    names = list(class_names) if class_names is not None else list(scene.class_names or [])
    K = max(int(lab.max()), len(names))
    if names and int(lab.max()) > len(names):
        raise ValueError(f"Labels go up to class {int(lab.max())} but {len(names)} class names "
                         "were given; give one name per class 1..K.")
    names = names or [f"class {i + 1}" for i in range(K)]
    counts = np.bincount(lab.reshape(-1), minlength=K + 1)[1:]
    empty = [i + 1 for i in range(K) if counts[i] == 0]
    if empty:
        warnings.warn(
            f"Class(es) {', '.join(f'{c} ({names[c - 1]})' for c in empty)} have no labelled "
            "pixel: the model cannot learn them and will almost never predict them. Label a few "
            "pixels of each class, or renumber the classes.", UserWarning, stacklevel=3)
    if shots is None:
        return lab, K, names
    if not isinstance(shots, (int, np.integer)) or isinstance(shots, bool) or shots < 1:
        raise ValueError(f"shots must be a positive integer (or None for all labelled pixels); "
                         f"got {shots!r}.")
    present = counts[counts > 0]
    if shots >= present.max():
        warnings.warn(
            f"shots={shots} is at least the number of labelled pixels of every class (the largest "
            f"has {int(present.max())}): all labelled pixels are used for training, as with "
            "shots=None (a sparse label map).", UserWarning, stacklevel=3)
        return lab, K, names
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        split = few_shot_split(lab, int(shots), seed, min_test=0)
    short = {c: n for c, n in split.short_classes.items()}
    if short:
        listing = ", ".join(f"class {c} ({names[c - 1]}: {n} pixels)" for c, n in sorted(short.items()))
        warnings.warn(f"shots={shots} exceeds the labelled pixels of {listing}; those classes use "
                      "all their pixels.", UserWarning, stacklevel=3)
    del caught
    return split.train, K, names


def check_coverage(model: nn.Module, wavelengths: np.ndarray) -> dict[str, float]:
    """Refuse sensors the model cannot use; warn when the checkpoint saw little of this range."""
    res = canonical_resampler(wavelengths, model.grid)  # raises when no grid point is covered
    info = {"coverage": res.coverage}
    ref = getattr(model, "default_wavelengths", None)
    pcfg = getattr(model, "pretrained_cfg", None) or {}
    if ref is None and pcfg.get("sensor"):
        try:
            ref = resolve_wavelengths(None, pcfg["sensor"])
        except (ValueError, KeyError):
            ref = None
    if ref is not None:
        seen = canonical_resampler(ref, model.grid).present
        overlap = float((seen & res.present).sum() / max(res.present.sum(), 1))
        info["checkpoint_overlap"] = overlap
        if overlap == 0.0:
            raise ValueError(
                f"The scene's bands ({wavelengths.min():.0f}-{wavelengths.max():.0f} nm) do not "
                "overlap the spectral range the checkpoint was trained on "
                f"({ref.min():.0f}-{ref.max():.0f} nm); this checkpoint cannot cover this sensor. "
                "Use a checkpoint pretrained on a covering sensor, or pretrained=False.")
        if overlap < 0.5:
            warnings.warn(
                f"Only {100 * overlap:.0f} % of the scene's canonical spectrum lies in the range the "
                f"checkpoint was trained on ({ref.min():.0f}-{ref.max():.0f} nm); its features may "
                "transfer poorly.", UserWarning, stacklevel=3)
    return info


#: A checkpoint's sensor counts as the scene's when the scene's band spacing is within these
#: ratios of the sensor's, the median offset of the scene's band centres from the sensor's
#: nearest ones is at most this share of the sensor's spacing (random centres give about a
#: quarter; the AVIRIS presets of Indian Pines, Salinas and KSC differ by 0.15, every other
#: preset sensor by 0.24 or more), and the sensor covers this share of the scene's range.
SAME_SENSOR_SPACING = (0.8, 1.25)
SAME_SENSOR_OFFSET = 0.2
SAME_SENSOR_RANGE = 0.95


def band_match(scene_wl: np.ndarray, ref_wl: np.ndarray) -> dict[str, float]:
    """How closely a scene's bands follow a sensor's.

    Args:
        scene_wl: The scene's band centres (nm).
        ref_wl: The sensor's band centres (nm).

    Returns:
        ``{"spacing_ratio": scene's median spacing / sensor's, "offset": median distance of the
        scene's centres to the sensor's nearest, in sensor spacings, "range": share of the
        scene's range the sensor covers, "same_sensor": all three within the limits above}``.
    """
    scene_wl = np.sort(np.asarray(scene_wl, dtype=np.float64))
    ref_wl = np.sort(np.asarray(ref_wl, dtype=np.float64))
    if scene_wl.size < 2 or ref_wl.size < 2:
        return {"spacing_ratio": float("nan"), "offset": float("nan"), "range": 0.0,
                "same_sensor": False}
    ref_sp = float(np.median(np.diff(ref_wl)))
    ratio = float(np.median(np.diff(scene_wl))) / ref_sp
    near = np.abs(scene_wl[:, None] - ref_wl[None, :]).min(1)
    offset = float(np.median(near)) / ref_sp
    span = max(float(scene_wl[-1] - scene_wl[0]), 1e-9)
    inside = max(0.0, min(scene_wl[-1], ref_wl[-1]) - max(scene_wl[0], ref_wl[0]))
    cover = min(1.0, inside / span)
    same = (SAME_SENSOR_SPACING[0] <= ratio <= SAME_SENSOR_SPACING[1]
            and offset <= SAME_SENSOR_OFFSET and cover >= SAME_SENSOR_RANGE)
    return {"spacing_ratio": ratio, "offset": offset, "range": cover, "same_sensor": bool(same)}


#: How :func:`build_model` describes weights that are not published ones (their prefixes).
_NOT_PUBLISHED = ("random init", "checkpoint ", "saved model ")


def weights_know_scene(net: nn.Module, weights: str, sensor: str | None,
                       wavelengths: Sequence[float]) -> bool | None:
    """Whether the published weights were pretrained on the scene's sensor (family).

    True when the weights' sensor is the scene's preset or its bands match the scene's
    (:func:`band_match`); False for published weights that never saw it (the sensor-agnostic
    ones included); None when the weights are not published ones (random, a checkpoint file,
    a saved model), whose pretraining is not known.
    """
    if weights.startswith(_NOT_PUBLISHED):
        return None
    ck = (getattr(net, "pretrained_cfg", None) or {}).get("sensor")
    if sensor and sensor == ck:
        return True
    m = _match_sensor(wavelengths, ck)
    return bool(m is not None and m["same_sensor"])


def _match_sensor(wavelengths: Sequence[float], ck_sensor: str | None) -> dict[str, float] | None:
    """:func:`band_match` of a scene's bands against a checkpoint's sensor; None when the
    checkpoint names no sensor or one without known band centres."""
    if not ck_sensor:
        return None
    try:
        ref = resolve_wavelengths(None, ck_sensor)
    except (ValueError, KeyError):
        return None
    return band_match(np.asarray(wavelengths, dtype=np.float64), ref)


def pick_checkpoint(arch: str, sensor: str | None,
                    wavelengths: Sequence[float] | None = None) -> tuple[str, str]:
    """The published weights of ``arch`` that suit a scene: (``arch.tag``, why).

    Weights pretrained on the scene's own sensor come first (in-domain pretraining probes and
    fine-tunes best where it exists: issue 19's graph probe and linear probe). The sensor is the
    scene's preset name when it has one; otherwise it is recognised from the scene's
    wavelengths: a checkpoint's sensor whose bands match the scene's (:func:`band_match`: the
    same spacing, centres close, its range covering the scene's) is the scene's sensor family,
    so an AVIRIS cube given only its
    wavelengths gets the AVIRIS-pretrained weights, as the same cube named by its preset does.
    Otherwise the architecture's default weights (timm's choice for
    ``create_model(arch, pretrained=True)``, the sensor-agnostic ones).

    Raises:
        ValueError: ``arch`` has no published weights.
    """
    from timm.models import get_pretrained_cfg

    from hsizoo.models._factory import list_pretrained

    tags = list_pretrained(arch + ".*")
    if not tags:
        raise ValueError(f"{arch} has no pretrained weights yet (registered: "
                         f"{', '.join(list_pretrained()) or 'none'}).")
    cfgs = {tag: get_pretrained_cfg(tag) for tag in tags}
    if sensor:
        for tag, cfg in cfgs.items():
            if cfg is not None and getattr(cfg, "sensor", None) == sensor:
                return tag, f"pretrained on this scene's sensor ({sensor})"
    if wavelengths is not None:
        best: tuple[float, str, dict[str, float], str] | None = None
        for tag, cfg in cfgs.items():
            ck_sensor = getattr(cfg, "sensor", None) if cfg is not None else None
            m = _match_sensor(wavelengths, ck_sensor)
            if m is not None and m["same_sensor"] and (best is None or m["offset"] < best[0]):
                best = (m["offset"], tag, m, ck_sensor)
        if best is not None:
            _, tag, m, ck_sensor = best
            return tag, (f"pretrained on {ck_sensor}, whose bands match this scene's (same "
                         f"spacing within {abs(100 * (m['spacing_ratio'] - 1)):.0f} %, centres "
                         f"{m['offset']:.2f} of a band apart)")
    default = get_pretrained_cfg(arch)
    if default is not None and f"{arch}.{default.tag}" in tags:
        return f"{arch}.{default.tag}", "the architecture's default weights" + (
            f" (none pretrained on {sensor})" if sensor else
            " (none pretrained on a sensor matching this scene's bands)"
            if wavelengths is not None else "")
    return tags[0], "the first published weights"


def build_model(name: str, pretrained: bool | None, checkpoint_path: str | None,
                num_classes: int, sensor: str | None = None,
                scene_wavelengths: Sequence[float] | None = None, **model_kwargs: Any
                ) -> tuple[nn.Module, str]:
    """Create the backbone; returns (model, description of the weights used).

    A bare architecture name with ``pretrained`` None or True gets the published weights that
    suit the scene (:func:`pick_checkpoint`, from its ``sensor`` or ``scene_wavelengths``);
    ``arch.tag`` gets
    exactly those weights.
    """
    from hsizoo.models._factory import create_model, list_pretrained

    if checkpoint_path is not None:
        m = create_model(name, checkpoint_path=checkpoint_path, **model_kwargs)
        m.reset_classifier(num_classes)
        return m, f"checkpoint {checkpoint_path}"
    from hsizoo.hub.hf_names import is_hf_name

    if is_hf_name(name) or Path(name).expanduser().is_dir():
        # A saved folder or a Hub name carries its own weights: load them, new head.
        if pretrained is False:
            raise ValueError(f"{name} is a saved model with its own weights; pretrained=False "
                             "(CLI: --no-pretrained) asks for a random initialisation. Pass "
                             "its architecture's name (e.g. s2former_tiny) for that, or drop "
                             "pretrained=False to fine-tune from its weights.")
        m = create_model(name, **model_kwargs)
        m.reset_classifier(num_classes)
        return m, f"saved model {name}"
    if pretrained is False:
        return create_model(name, num_classes=num_classes, **model_kwargs), "random init"
    arch = name.split(".")[0]
    if "." in name:
        if name not in list_pretrained():
            raise ValueError(f"{name} has no pretrained weights (registered: "
                             f"{', '.join(list_pretrained()) or 'none'}).")
        return create_model(name, pretrained=True, num_classes=num_classes, **model_kwargs), name
    try:
        tag, why = pick_checkpoint(arch, sensor, scene_wavelengths)
    except ValueError as e:
        if pretrained is True:
            raise ValueError(f"{e} Pass pretrained=False (CLI: --no-pretrained) to fine-tune "
                             "from a random initialisation, or checkpoint_path= your own "
                             "weights.") from None
        warnings.warn(f"{e} Fine-tuning from a random initialisation; accuracy will be lower. "
                      "Pass pretrained=False to silence this.", UserWarning, stacklevel=3)
        return create_model(arch, num_classes=num_classes, **model_kwargs), "random init"
    m = create_model(tag, pretrained=True, num_classes=num_classes, **model_kwargs)
    return m, f"{tag} ({why})"

