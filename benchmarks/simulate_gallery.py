"""Look at a simulated scene: false-colour composite, layout and class-mean spectra in one PNG.

    python benchmarks/simulate_gallery.py --layout indian_pines --sensor aviris_indian_pines \
        --out simulate_gallery.png

Also prints how long the simulation took and how well a nearest-class-mean classifier does on
the labelled pixels (a sanity check that classes are separable but not trivially so).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from hsizoo.data.layouts import make_layout
from hsizoo.data.simulate import simulate_scene


def _stretch(x: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(x, [2, 98])
    return np.clip((x - lo) / (hi - lo + 1e-12), 0, 1)


def nearest_mean_accuracy(cube: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of a nearest-class-mean classifier trained and tested on all labelled pixels."""
    mask = labels > 0
    x, y = cube[mask], labels[mask]
    ids = np.unique(y)
    means = np.stack([x[y == c].mean(0) for c in ids])
    d = ((x[:, None, :] - means[None]) ** 2).sum(-1)
    return float((ids[d.argmin(1)] == y).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layout", default="indian_pines",
                    help="layout name, or 'voronoi'/'fields' for a generated 145 x 145 layout")
    ap.add_argument("--sensor", default="aviris_indian_pines")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="simulate_gallery.png")
    args = ap.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layout = (make_layout((145, 145), 10, args.seed, kind=args.layout)
              if args.layout in ("voronoi", "fields") else args.layout)
    t0 = time.perf_counter()
    scene = simulate_scene(layout, sensor=args.sensor, seed=args.seed)
    dt = time.perf_counter() - t0
    acc = nearest_mean_accuracy(scene.cube, scene.labels)
    print(f"simulated {scene.shape} ({args.sensor}) in {dt:.2f} s; nearest-class-mean accuracy "
          f"{acc:.3f} over {int(scene.labels.max())} classes")

    wl = scene.wavelengths
    # Colour-infrared composite (NIR, red, green) where the sensor has NIR, else true colour.
    targets = (860, 650, 550) if wl.max() > 800 else (650, 550, 470)
    rgb = np.stack([_stretch(scene.cube[..., int(np.argmin(np.abs(wl - t)))]) for t in targets],
                   axis=-1)
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.8))
    ax[0].imshow(rgb)
    ax[0].set_title(f"false colour {targets} nm, {scene.sensor}")
    ax[1].imshow(scene.labels, cmap="tab20", interpolation="nearest")
    ax[1].set_title(f"layout ({args.layout})")
    cmap = plt.get_cmap("tab20")
    for c in range(1, int(scene.labels.max()) + 1):
        m = scene.labels == c
        if m.any():
            ax[2].plot(wl, scene.cube[m].mean(0), ".", ms=2, color=cmap(c % 20),
                       label=scene.class_names[c - 1][:18])
    ax[2].set_xlabel("wavelength (nm)")
    ax[2].set_ylabel("reflectance")
    ax[2].legend(fontsize=6, ncol=2)
    for a in ax[:2]:
        a.axis("off")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
