"""Command line of few-shot fine-tuning: ``hsizoo finetune`` and ``hsizoo predict``."""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from hsizoo.cli import args as types
from hsizoo.cli.campaign import add_campaign_arguments
from hsizoo.runtime.device import add_device_arguments
from hsizoo.finetune.inputs import as_scene

__all__ = ["FINETUNE_COMMAND", "PREDICT_COMMAND", "register_cli"]


def _scene_pixels(scene: str) -> int:
    """Pixels of a raster scene, from its header only (0 when not known cheaply)."""
    try:
        if Path(scene).suffix.lower() == ".mat" or not Path(scene).is_file():
            return 0
        import rasterio

        with rasterio.open(scene) as ds:
            return int(ds.width) * int(ds.height)
    except Exception:  # the scene's own problems are reported later, with the reader's message
        return 0


# Data files an ENVI header names, and headers of ENVI data files: part of the scene.
_ENVI_DATA = ("", ".img", ".dat", ".bsq", ".bil", ".bip", ".raw")


def _scene_files(scene: str) -> list[Path]:
    """The scene's file, and the other half of an ENVI pair (header or data file)."""
    p = Path(os.path.expanduser(scene))  # an unknown ~user stays as typed
    try:
        if p.suffix.lower() == ".hdr":
            return [p] + [p.with_suffix(s) for s in _ENVI_DATA]
        return [p, p.with_suffix(".hdr"), p.with_name(p.name + ".hdr")]
    except ValueError:  # no file name ("", "/"): the reader says what is wrong with it
        return [p]


def _is_path(text: str | None) -> bool:
    try:
        return bool(text) and Path(os.path.expanduser(str(text))).exists()
    except OSError:  # a name too long for a path
        return False


def _check_outputs(args: argparse.Namespace) -> None:
    """Check every output location before any work: not an input, folder, kind, overwrite,
    free space."""
    from hsizoo.hub.verify import CARD_NAME, CONFIG_NAME, WEIGHTS_NAME
    from hsizoo.io.atomic import OutputError, check_output
    from hsizoo.io.commit import refuse_inputs_as_outputs

    save_model = getattr(args, "save_model", None)
    inputs = [("the scene (SCENE)", f) for f in _scene_files(str(args.scene))]
    inputs += [("LABELS", getattr(args, "labels", None)),
               ("--eval-labels", getattr(args, "eval_labels", None)),
               ("--wavelengths", getattr(args.wavelengths, "source", None))]
    model_opt = "MODEL" if getattr(args, "command", None) == "predict" else "--model"
    if _is_path(args.model):  # a model folder, not a registered name
        inputs.append((f"the model folder ({model_opt})", args.model))
    refuse_inputs_as_outputs(
        [("--out", args.out, ()), ("--confidence", args.confidence, ()),
         ("--quicklook", args.quicklook, ()),
         ("--save-model", save_model, (WEIGHTS_NAME, CONFIG_NAME, CARD_NAME))], inputs)
    px = _scene_pixels(str(args.scene))
    # Uncompressed sizes: uint16 class ids, float32 confidences, an RGBA quicklook of two panels.
    outputs = [(args.out, "--out", 2 * px), (args.confidence, "--confidence", 4 * px),
               (args.quicklook, "--quicklook", 8 * px)]
    named = [(Path(os.path.realpath(os.path.expanduser(p))), opt) for p, opt, _ in outputs
             if p is not None]
    for i, (p, opt) in enumerate(named):
        same = [o for q, o in named[:i] if q == p]
        if same:
            raise OutputError(f"{opt} and {same[0]} both name {p}; give each output its own file.")
    for path, option, size in outputs:
        if path is not None:
            check_output(path, overwrite=args.overwrite, estimated_bytes=size, option=option)
    if save_model:
        from hsizoo.hub.save import check_save_folder

        check_save_folder(save_model, args.overwrite)


def _cmd_finetune(args: argparse.Namespace) -> int:
    from hsizoo.finetune import finetune
    from hsizoo.io.commit import commit_together

    _check_outputs(args)  # before the training, which a bad output path would waste
    shots = None if args.all_labels else args.shots
    ft = finetune(args.scene, args.labels, shots=shots, model=args.model,
                  pretrained=False if args.no_pretrained else None, seed=args.seed,
                  wavelengths=args.wavelengths, sensor=args.sensor, nodata=args.nodata,
                  daft=not args.no_daft, steps=args.steps, time_budget=args.time_budget,
                  adapt_steps=args.adapt_steps,
                  progress=not args.quiet, device=args.device, precision=args.precision)
    if not args.json:
        print(ft.summary())
    result = ft.predict(progress=not args.quiet)
    # The map, its confidence, the quicklook and the model are one result: all or none.
    with commit_together():
        result.save(args.out, overwrite=args.overwrite, confidence_path=args.confidence,
                    quicklook=args.quicklook)
        if args.save_model:
            ft.save_pretrained(args.save_model, overwrite=args.overwrite)
    report = None
    if args.eval_labels:
        from hsizoo.io import read_labels

        report = ft.evaluate(read_labels(args.eval_labels))
    if args.json:
        from hsizoo.cli import print_json

        print_json(dict(command="finetune", summary=ft.summary(), outputs=_outputs(args),
                        model_folder=args.save_model, history=ft.history,
                        evaluation=None if report is None else report.as_dict()))
        return 0
    for path in _outputs(args).values():
        print(f"wrote {path}")
    if args.save_model:
        print(f"saved the fine-tuned model to {args.save_model}")
    if report is not None:
        print(report)
    return 0


def _outputs(args: argparse.Namespace) -> dict[str, str]:
    """The files written: {"map": ..., "confidence": ..., "quicklook": ...} (those asked for)."""
    named = {"map": args.out, "confidence": args.confidence, "quicklook": args.quicklook}
    return {k: str(v) for k, v in named.items() if v}


def _cmd_predict(args: argparse.Namespace) -> int:
    from hsizoo.cli import UsageError
    from hsizoo.cli.campaign import run_campaign, wants_campaign
    from hsizoo.finetune.result import load_finetuned

    if wants_campaign(args):
        return run_campaign(args)
    if args.out is None:
        raise UsageError("Give --out MAP.tif for one scene, or --out-dir DIR for several.")
    args = argparse.Namespace(**{**vars(args), "scene": args.scene[0]})  # the caller's kept
    _check_outputs(args)
    from hsizoo.runtime.device import resolve_device, resolve_precision
    from hsizoo.runtime.distributed import worker_threads

    worker_threads(args.threads)
    ft = load_finetuned(args.model)
    dev = resolve_device(args.device)
    ft.model.to(dev)
    ft.precision = resolve_precision(args.precision, dev)
    wl = args.wavelengths
    if args.quicklook:
        res = ft.predict(as_scene(args.scene, wl, args.sensor), progress=not args.quiet)
        res.save(args.out, overwrite=args.overwrite, confidence_path=args.confidence,
                 quicklook=args.quicklook)  # all three, or none
    else:
        # Streamed window by window: bounded memory for scenes larger than RAM.
        res = ft.predict(str(args.scene), out_path=args.out, confidence_path=args.confidence,
                         overwrite=args.overwrite, window_size=args.window,
                         progress=not args.quiet, wavelengths=wl, sensor=args.sensor)
    if args.json:
        from hsizoo.cli import print_json

        print_json(dict(command="predict", scene=str(args.scene), outputs=_outputs(args),
                        seconds=round(res.seconds, 3)))
        return 0
    print(f"wrote {args.out} in {res.seconds:.1f} s")
    return 0


FINETUNE_HELP = "few-shot DAFT fine-tuning on a scene, writing its class map"
PREDICT_HELP = "classify a scene (or a campaign of scenes, on many workers) with a fine-tuned model"


def _add_finetune_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("scene", type=types.path, help="scene file (GeoTIFF, ENVI, .mat)")
    p.add_argument("labels", type=types.path,
                   help="label map file (GeoTIFF, .mat, .npy, .npz), 0 = unlabelled")
    p.add_argument("--shots", type=types.shots, default=10,
                   help="labelled pixels per class drawn from LABELS (default 10)")
    p.add_argument("--all-labels", action="store_true",
                   help="LABELS is sparse: use every labelled pixel")
    p.add_argument("--out", required=True, type=types.path, help="output class map GeoTIFF")
    p.add_argument("--confidence", type=types.path,
                   help="also write the confidence map GeoTIFF here")
    p.add_argument("--quicklook", type=types.path, help="also write a quicklook PNG here")
    p.add_argument("--save-model", type=types.path,
                   help="save the fine-tuned model to this folder")
    p.add_argument("--eval-labels", type=types.path,
                   help="reference labels to print OA, AA and kappa against")
    p.add_argument("--model", type=types.path, default="s2former_tiny",
                   help="model name or folder")
    p.add_argument("--no-pretrained", action="store_true", help="random initialisation")
    p.add_argument("--no-daft", action="store_true", help="plain fine-tuning (ablation)")
    p.add_argument("--steps", type=types.non_negative_int, default=200,
                   help="fine-tuning steps (default 200)")
    p.add_argument("--time-budget", type=types.positive_float, default=None,
                   help="stop fine-tuning after this many seconds")
    p.add_argument("--adapt-steps", type=types.non_negative_int, default=None,
                   help="self-supervised steps on the scene before fine-tuning (default: 300 "
                        "when the published weights were not pretrained on the scene's "
                        "sensor, else 0; 0 turns it off)")
    p.add_argument("--seed", type=types.seed, default=0,
                   help="seed of the shot draw and of training (default 0)")
    p.add_argument("--nodata", type=float, default=None,
                   help="the scene's fill value, when the file does not declare one")
    _add_scene_and_run_args(p)


def _add_scene_and_run_args(p: argparse.ArgumentParser) -> None:
    """Options finetune and predict share: the scene's bands, overwriting, progress, device."""
    p.add_argument("--sensor", help="sensor preset when the file has no wavelengths")
    p.add_argument("--wavelengths", type=types.wavelength_list,
                   help="band centres in nm: a comma list, or a file holding one")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bars or notes: only results and errors")
    p.add_argument("--json", action="store_true",
                   help="print the result (outputs written, summary, accuracy) as one JSON object")
    add_device_arguments(p)


def _add_predict_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=types.path,
                   help="folder written by --save-model / FineTuned.save_pretrained")
    p.add_argument("scene", type=types.path, nargs="+",
                   help="scene file(s) (GeoTIFF, ENVI, .mat); several need --out-dir")
    p.add_argument("--out", type=types.path, help="output class map GeoTIFF (one scene)")
    p.add_argument("--confidence", type=types.path,
                   help="also write the confidence map GeoTIFF here")
    p.add_argument("--quicklook", type=types.path,
                   help="also write a quicklook PNG (reads the scene into memory)")
    p.add_argument("--window", type=types.positive_int, default=256,
                   help="window side in pixels (default 256)")
    _add_scene_and_run_args(p)
    add_campaign_arguments(p)


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
