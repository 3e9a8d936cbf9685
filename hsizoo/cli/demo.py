"""``hsizoo demo``: the main job end to end on built-in data, in a few minutes on a CPU.

Default data is a simulated 145 x 145 AVIRIS scene (:func:`hsizoo.data.simulate.simulate_scene`, real
library spectra on a generated field layout), so the demo runs on a fresh clone without
downloads; ``--data indian_pines`` uses the real Indian Pines scene (``--root`` names its folder).
The demo draws ``shots`` labelled pixels per class, fine-tunes with DAFT, maps the whole scene,
writes the class map GeoTIFF and a quicklook PNG, and prints OA, AA and kappa on every other
labelled pixel.
"""
from __future__ import annotations

import argparse
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hsizoo.cli import args as types

__all__ = ["DemoResult", "demo", "register_demo_cli"]

# A simulated scene has no location; the demo places it on an illustrative UTM grid (20 m pixels,
# like AVIRIS over Indian Pines) so that the GeoTIFF opens georeferenced in a GIS.
_DEMO_CRS = "EPSG:32616"
_DEMO_ORIGIN = (500000.0, 4480000.0)
_DEMO_PIXEL = 20.0


@dataclass
class DemoResult:
    """What the demo produced.

    Attributes:
        map_path: Class map GeoTIFF.
        quicklook_path: Quicklook PNG.
        report: :class:`~hsizoo.data.metrics.ClassificationReport` on the non-training pixels.
        seconds: Wall-clock time, end to end.
    """

    map_path: Path
    quicklook_path: Path
    report: Any
    seconds: float


def _demo_scene(data: str, root: str | None, size: int, seed: int) -> Any:
    if data == "simulated":
        from affine import Affine

        from hsizoo.data.simulate import simulate_scene

        scene = simulate_scene((size, size), sensor="aviris_indian_pines", seed=seed)
        scene.crs = _DEMO_CRS
        scene.transform = Affine(_DEMO_PIXEL, 0.0, _DEMO_ORIGIN[0], 0.0, -_DEMO_PIXEL,
                                 _DEMO_ORIGIN[1])
        scene.meta["georeferencing"] = "illustrative (simulated scene)"
        return scene
    if data == "indian_pines":
        from hsizoo.data.download import load_dataset
        from hsizoo.data.layouts import data_dir

        if root is None:
            shared = data_dir()
            root = str(shared) if (shared / "Indian_pines_corrected.mat").exists() else None
        return load_dataset("indian_pines", root=root, progress=False)
    raise ValueError(f"Unknown demo data {data!r}; use 'simulated' or 'indian_pines'.")


def demo(out_dir: str | Path = ".", *, data: str = "simulated", root: str | None = None,
         shots: int = 10, model: str = "s2former_tiny", steps: int = 200, seed: int = 0,
         size: int = 145, overwrite: bool = False, progress: bool = True,
         pretrained: bool | None = None, print_fn: Any = print) -> DemoResult:
    """Run the main job: few-shot fine-tuning, whole-scene map, GeoTIFF + quicklook, metrics.

    Args:
        out_dir: Folder for ``demo_map.tif`` and ``demo_quicklook.png``.
        data: "simulated" (built in) or "indian_pines" (the real scene).
        root: Folder of the Indian Pines files (default ../shared/data/hsi beside the checkout,
            else the dataset cache).
        shots: Labelled pixels per class.
        model: Model name.
        steps: Fine-tuning steps.
        seed: Seed of the scene simulation, the shot draw and training.
        size: Side of the simulated scene in pixels.
        overwrite: Replace existing outputs.
        progress: Progress bars.
        pretrained: As :func:`hsizoo.finetune` (None = weights if published, else random init).
        print_fn: Where the summary lines go.

    Returns:
        A :class:`DemoResult`.
    """
    from hsizoo.finetune import finetune
    from hsizoo.data.splits import few_shot_split
    from hsizoo.io.commit import commit_together

    t0 = time.perf_counter()
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    map_path, ql_path = out / "demo_map.tif", out / "demo_quicklook.png"
    for p in (map_path, ql_path):
        if p.exists() and not overwrite:
            raise FileExistsError(f"{p} already exists; pass --overwrite to replace it, or choose "
                                  "another --out-dir.")
    scene = _demo_scene(data, root, size, seed)
    split = few_shot_split(scene.labels, shots, seed)
    print_fn(f"scene: {data} {scene.shape[0]} x {scene.shape[1]} x {scene.shape[2]} bands, "
             f"{len(scene.class_names or [])} classes; {split.num_train} training pixels "
             f"({shots} per class), {split.num_test} test pixels")
    with warnings.catch_warnings():
        # The demo says which weights it uses; the no-weights-yet warning is expected here.
        warnings.filterwarnings("ignore", message=".*has no pretrained weights yet.*")
        ft = finetune(scene, split.train, shots=None, model=model, pretrained=pretrained,
                      seed=seed, steps=steps, progress=progress)
    print_fn(ft.summary())
    result = ft.predict(progress=progress)
    print_fn(f"predicted {int(scene.valid.sum())} pixels in {result.seconds:.1f} s")
    with commit_together():  # the map and its quicklook: both replaced, or neither
        result.save(map_path, overwrite=overwrite)
        result.save_quicklook(ql_path, overwrite=overwrite,
                              title=f"hsizoo demo: {data}, {shots} shots per class, {model}")
    report = result.evaluate(split.test)
    secs = time.perf_counter() - t0
    print_fn(report.headline("test pixels"))
    print_fn(f"wrote {map_path} and {ql_path} ({secs:.1f} s in all)")
    return DemoResult(map_path=map_path, quicklook_path=ql_path, report=report, seconds=secs)


def _cmd_demo(args: argparse.Namespace) -> int:
    demo(args.out_dir, data=args.data, root=args.root, shots=args.shots, model=args.model,
         steps=args.steps, seed=args.seed, size=args.size, overwrite=args.overwrite,
         progress=not args.quiet, pretrained=False if args.no_pretrained else None)
    return 0


DEMO_HELP = "the main job on built-in data: few-shot map + GeoTIFF + quicklook + OA"


def _add_demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", choices=["simulated", "indian_pines"], default="simulated",
                   help="simulated scene (default, no download) or the real Indian Pines")
    p.add_argument("--root", help="folder holding the Indian Pines files")
    p.add_argument("--out-dir", default=".", help="where to write the map and quicklook")
    p.add_argument("--shots", type=types.shots, default=10, help="labelled pixels per class")
    p.add_argument("--model", default="s2former_tiny", help="model name")
    p.add_argument("--steps", type=types.non_negative_int, default=200, help="fine-tuning steps")
    p.add_argument("--size", type=types.positive_int, default=145, help="side of the simulated scene")
    p.add_argument("--seed", type=types.seed, default=0)
    p.add_argument("--no-pretrained", action="store_true", help="random initialisation")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def register_demo_cli(subparsers: Any) -> None:
    """Add the ``demo`` subcommand (handler in ``args.func``)."""
    d = subparsers.add_parser(
        "demo", help=DEMO_HELP,
        description="Fine-tune on a few labelled pixels per class of a built-in scene, map the "
        "whole scene, write demo_map.tif and demo_quicklook.png, print OA, AA and kappa.")
    _add_demo_args(d)
    d.set_defaults(func=_cmd_demo)


def _command() -> Any:
    from hsizoo.cli import Command

    return Command(DEMO_HELP, _add_demo_args, _cmd_demo)


DEMO_COMMAND = _command()
