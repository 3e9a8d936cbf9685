"""Command line of few-shot fine-tuning: ``hsizoo finetune`` and ``hsizoo predict``."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hsizoo.runtime.device import add_device_arguments
from hsizoo.finetune.inputs import as_scene

__all__ = ["FINETUNE_COMMAND", "PREDICT_COMMAND", "register_cli"]


def _positive_int(text: str) -> int:
    """argparse type of --shots: a whole number >= 1 (0 or -1 used to mean "all labels")."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a positive whole number of labelled pixels per class; use "
            "--all-labels to train on every labelled pixel.")
    return value


def _wavelength_arg(text: str | None) -> list[float] | None:
    if text is None:
        return None
    p = Path(text)
    raw = p.read_text() if p.is_file() else text
    return [float(v) for v in raw.replace(",", " ").split()]


def _scene_pixels(scene: str) -> int:
    """Pixels of a raster scene, from its header only (0 when not known cheaply)."""
    if Path(scene).suffix.lower() == ".mat" or not Path(scene).is_file():
        return 0
    try:
        import rasterio

        with rasterio.open(scene) as ds:
            return int(ds.width) * int(ds.height)
    except Exception:  # the scene's own problems are reported later, with the reader's message
        return 0


def _check_outputs(args: argparse.Namespace) -> None:
    """Check every output location before any work: folder, kind, overwrite, free space."""
    from hsizoo.io.atomic import OutputError, check_output

    px = _scene_pixels(str(args.scene))
    # Uncompressed sizes: uint16 class ids, float32 confidences, an RGBA quicklook of two panels.
    outputs = [(args.out, "--out", 2 * px), (args.confidence, "--confidence", 4 * px),
               (args.quicklook, "--quicklook", 8 * px)]
    named = [(Path(p).expanduser().resolve(), opt) for p, opt, _ in outputs if p is not None]
    for i, (p, opt) in enumerate(named):
        same = [o for q, o in named[:i] if q == p]
        if same:
            raise OutputError(f"{opt} and {same[0]} both name {p}; give each output its own file.")
    for path, option, size in outputs:
        if path is not None:
            check_output(path, overwrite=args.overwrite, estimated_bytes=size, option=option)
    if getattr(args, "save_model", None):
        from hsizoo.hub.save import check_save_folder

        check_save_folder(args.save_model, args.overwrite)


def _cmd_finetune(args: argparse.Namespace) -> int:
    from hsizoo.finetune import finetune

    _check_outputs(args)  # before the training, which a bad output path would waste
    shots = None if args.all_labels else args.shots
    ft = finetune(args.scene, args.labels, shots=shots, model=args.model,
                  pretrained=False if args.no_pretrained else None, seed=args.seed,
                  wavelengths=_wavelength_arg(args.wavelengths), sensor=args.sensor,
                  daft=not args.no_daft, steps=args.steps, time_budget=args.time_budget,
                  progress=not args.quiet, device=args.device, precision=args.precision)
    print(ft.summary())
    result = ft.predict(progress=not args.quiet)
    result.save(args.out, overwrite=args.overwrite, confidence_path=args.confidence)
    print(f"wrote {args.out}")
    if args.quicklook:
        result.save_quicklook(args.quicklook, overwrite=args.overwrite)
        print(f"wrote {args.quicklook}")
    if args.save_model:
        ft.save_pretrained(args.save_model, overwrite=args.overwrite)
        print(f"saved the fine-tuned model to {args.save_model}")
    if args.eval_labels:
        from hsizoo.io import read_labels

        print(ft.evaluate(read_labels(args.eval_labels)))
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from hsizoo.finetune.result import load_finetuned

    _check_outputs(args)
    from hsizoo.runtime.device import resolve_device, resolve_precision

    ft = load_finetuned(args.model)
    dev = resolve_device(args.device)
    ft.model.to(dev)
    ft.precision = resolve_precision(args.precision, dev)
    wl = _wavelength_arg(args.wavelengths)
    if args.quicklook:
        res = ft.predict(as_scene(args.scene, wl, args.sensor), progress=not args.quiet)
        res.save(args.out, overwrite=args.overwrite, confidence_path=args.confidence)
        res.save_quicklook(args.quicklook, overwrite=args.overwrite)
    else:
        # Streamed window by window: bounded memory for scenes larger than RAM.
        res = ft.predict(str(args.scene), out_path=args.out, confidence_path=args.confidence,
                         overwrite=args.overwrite, window_size=args.window,
                         progress=not args.quiet, wavelengths=wl, sensor=args.sensor)
    print(f"wrote {args.out} in {res.seconds:.1f} s")
    return 0


FINETUNE_HELP = "few-shot DAFT fine-tuning on a scene, writing its class map"
PREDICT_HELP = "classify a scene with a fine-tuned model folder"


def _add_finetune_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("scene", help="scene file (GeoTIFF, ENVI, .mat)")
    p.add_argument("labels", help="label map file (GeoTIFF, .mat, .npy, .npz), 0 = unlabelled")
    p.add_argument("--shots", type=_positive_int, default=10,
                   help="labelled pixels per class drawn from LABELS (default 10)")
    p.add_argument("--all-labels", action="store_true",
                   help="LABELS is sparse: use every labelled pixel")
    p.add_argument("--out", required=True, help="output class map GeoTIFF")
    p.add_argument("--confidence", help="also write the confidence map GeoTIFF here")
    p.add_argument("--quicklook", help="also write a quicklook PNG here")
    p.add_argument("--save-model", help="save the fine-tuned model to this folder")
    p.add_argument("--eval-labels", help="reference labels to print OA, AA and kappa against")
    p.add_argument("--model", default="s2former_tiny", help="model name or folder")
    p.add_argument("--no-pretrained", action="store_true", help="random initialisation")
    p.add_argument("--no-daft", action="store_true", help="plain fine-tuning (ablation)")
    p.add_argument("--steps", type=int, default=200, help="fine-tuning steps")
    p.add_argument("--time-budget", type=float, default=None, help="stop after this many s")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sensor", help="sensor preset when the file has no wavelengths")
    p.add_argument("--wavelengths", help="band centres in nm: a file or a comma list")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_device_arguments(p)


def _add_predict_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="folder written by --save-model / FineTuned.save_pretrained")
    p.add_argument("scene", help="scene file (GeoTIFF, ENVI, .mat)")
    p.add_argument("--out", required=True, help="output class map GeoTIFF")
    p.add_argument("--confidence", help="also write the confidence map GeoTIFF here")
    p.add_argument("--quicklook", help="also write a quicklook PNG (reads the scene into memory)")
    p.add_argument("--window", type=int, default=256, help="window side in pixels")
    p.add_argument("--sensor", help="sensor preset when the file has no wavelengths")
    p.add_argument("--wavelengths", help="band centres in nm: a file or a comma list")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_device_arguments(p)


def register_cli(subparsers: Any) -> None:
    """Add the ``finetune`` and ``predict`` subcommands to an argparse subparsers object.

    Each subparser's handler is ``args.func(args)`` returning an exit code. ``hsizoo`` itself
    uses :data:`FINETUNE_COMMAND` and :data:`PREDICT_COMMAND` through :mod:`hsizoo.cli`.
    """
    p = subparsers.add_parser(
        "finetune", help=FINETUNE_HELP,
        description="Fine-tune an S2Former on a few labelled pixels per class (DAFT) and write "
        "the scene's class map as a GeoTIFF on the scene's grid.")
    _add_finetune_args(p)
    p.set_defaults(func=_cmd_finetune)
    q = subparsers.add_parser(
        "predict", help=PREDICT_HELP,
        description="Classify every valid pixel of a scene with a model saved by "
        "'hsizoo finetune --save-model', window by window (bounded memory).")
    _add_predict_args(q)
    q.set_defaults(func=_cmd_predict)


def _commands() -> tuple[Any, Any]:
    from hsizoo.cli import Command

    return (Command(FINETUNE_HELP, _add_finetune_args, _cmd_finetune),
            Command(PREDICT_HELP, _add_predict_args, _cmd_predict))


FINETUNE_COMMAND, PREDICT_COMMAND = _commands()
