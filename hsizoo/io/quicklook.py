"""Quicklook PNGs: a true-colour (or false-colour) composite of a scene beside its class map."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hsizoo.io.atomic import check_output, write_atomic
from hsizoo.io.colors import UNCLASSIFIED_COLOR, check_colors, default_palette
from hsizoo.io.scene import Scene

#: Band centres (nm) of a true-colour composite: red, green, blue.
TRUE_COLOR_NM: tuple[float, float, float] = (640.0, 550.0, 470.0)
# A band further than this from a true-colour target does not show that colour.
_MAX_OFFSET_NM = 40.0


def composite_bands(wavelengths: Sequence[float]) -> tuple[list[int], bool]:
    """Choose the three bands of an RGB composite by wavelength.

    Args:
        wavelengths: Band centres in nm.

    Returns:
        (band indices for R, G, B; True when this is a true-colour composite). When the scene does
        not cover 640/550/470 nm (each within 40 nm), bands at 80 %, 50 % and 20 % of the covered
        range are used instead (a false-colour composite).
    """
    wl = np.asarray(wavelengths, dtype=np.float64)
    idx = [int(np.argmin(np.abs(wl - t))) for t in TRUE_COLOR_NM]
    if all(abs(wl[i] - t) <= _MAX_OFFSET_NM for i, t in zip(idx, TRUE_COLOR_NM)) and len(set(idx)) == 3:
        return idx, True
    lo, hi = wl.min(), wl.max()
    targets = [lo + f * (hi - lo) for f in (0.8, 0.5, 0.2)]
    return [int(np.argmin(np.abs(wl - t))) for t in targets], False


def stretch(rgb: np.ndarray, valid: np.ndarray | None = None, lower: float = 2.0,
            upper: float = 98.0) -> np.ndarray:
    """Per-channel percentile stretch to 0..1, percentiles taken over valid pixels only.

    Args:
        rgb: (H, W, 3) values.
        valid: (H, W) mask; invalid pixels are drawn black.
        lower: Lower percentile.
        upper: Upper percentile.

    Returns:
        (H, W, 3) float32 in 0..1.
    """
    rgb = np.asarray(rgb, dtype=np.float32)
    mask = np.isfinite(rgb).all(axis=-1) if valid is None else (valid & np.isfinite(rgb).all(-1))
    out = np.zeros_like(rgb)
    if not mask.any():
        return out
    for c in range(3):
        lo, hi = np.percentile(rgb[..., c][mask], [lower, upper])
        out[..., c] = np.clip((rgb[..., c] - lo) / max(hi - lo, 1e-12), 0, 1)
    out[~mask] = 0
    return out


def save_quicklook(path: str | Path, scene: Scene, class_map: np.ndarray | None = None,
                   class_names: Sequence[str] | None = None,
                   colors: Sequence[Sequence[int]] | None = None, title: str | None = None,
                   dpi: int = 120, overwrite: bool = True) -> Path:
    """Save a PNG: the scene's colour composite beside its class map with a legend.

    Args:
        path: Output .png path, written atomically (:mod:`hsizoo.io.atomic`).
        scene: The scene; its wavelengths pick the composite bands.
        class_map: (H, W) class ids (0 = unclassified). Defaults to ``scene.labels``; with neither,
            only the composite is drawn.
        class_names: Names of classes 1..K; default ``scene.class_names``, else "class k".
        colors: One (r, g, b) per class; default palette otherwise.
        title: Figure title.
        dpi: Resolution of the PNG.
        overwrite: Replace an existing file (the default); False refuses one that exists before
            or appears while the figure is drawn.

    Returns:
        The path written.

    Raises:
        OutputError: the folder is missing or not writable, or the write failed (a full disk):
            a previous file under ``path`` is then unchanged.
    """
    from hsizoo._optional import require

    require("matplotlib", "Writing a quicklook PNG")
    # Figure + Agg canvas directly (not pyplot): no global backend switch, no GUI, thread-safe.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    h, w = scene.cube.shape[:2]
    # An RGBA bitmap of both panels at most: a generous bound of the compressed PNG.
    path = check_output(path, overwrite=overwrite, estimated_bytes=8 * h * w)
    label_title = "Class map"
    if class_map is None and scene.labels is not None:
        class_map, label_title = scene.labels, "Reference labels"
    idx, true_color = composite_bands(scene.wavelengths)
    rgb = stretch(scene.cube[..., idx], scene.valid)
    nm = ", ".join(f"{scene.wavelengths[i]:.0f}" for i in idx)
    rgb_title = (f"True colour (R, G, B = {nm} nm)" if true_color else
                 f"False colour: scene does not cover the visible range (R, G, B = {nm} nm)")

    panels = 1 if class_map is None else 2
    aspect = w / max(h, 1)
    fig = Figure(figsize=(min(5.0 * aspect, 9.0) * panels + 0.4, 5.4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, panels, squeeze=False)[0]
    axes[0].imshow(rgb, interpolation="nearest")
    axes[0].set_title(rgb_title, fontsize=9)
    if class_map is not None:
        class_map = np.asarray(class_map)
        if class_map.shape != (h, w):
            raise ValueError(f"class_map shape {class_map.shape} differs from the scene's {(h, w)}.")
        names = list(class_names if class_names is not None else (scene.class_names or []))
        k = max(len(names), int(class_map.max()) if class_map.size else 0)
        names += [f"class {i + 1}" for i in range(len(names), k)]
        pal = check_colors(colors, k) if colors is not None else default_palette(k)
        table = np.array([UNCLASSIFIED_COLOR, *pal], dtype=np.float32) / 255.0
        axes[1].imshow(class_map, cmap=ListedColormap(table), vmin=-0.5, vmax=k + 0.5,
                       interpolation="nearest")
        axes[1].set_title(label_title, fontsize=9)
        present = set(np.unique(class_map).tolist())
        handles = [Patch(facecolor=table[i + 1], edgecolor="black", linewidth=0.3,
                         label=f"{i + 1} {names[i]}" + ("" if i + 1 in present else " (absent)"))
                   for i in range(k)]
        axes[1].legend(handles=handles, loc="center left", bbox_to_anchor=(1.02, 0.5),
                       fontsize=7, frameon=False, ncol=1 if k <= 24 else 2)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=11)
    # bbox "tight" grows the canvas to fit the legend beside the class map
    return write_atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi,
                                                      bbox_inches="tight", pad_inches=0.15),
                        overwrite=overwrite, verify=_check_png)


def _check_png(path: Path) -> None:
    with open(path, "rb") as f:
        head = f.read(8)
    if head != b"\x89PNG\r\n\x1a\n":
        raise OSError("the file written is not a PNG")
