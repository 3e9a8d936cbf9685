"""``hsizoo predict MODEL SCENE [SCENE ...] --out-dir DIR``: a campaign of scenes, on one
process, under torchrun (one share per rank) or as ``--shard I/N`` of a scheduler's array job."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

__all__ = ["add_campaign_arguments", "run_campaign"]


def add_campaign_arguments(p: argparse.ArgumentParser) -> None:
    """The options of the many-scene mode of ``hsizoo predict``."""
    from hsizoo.cli import args as types

    p.add_argument("--out-dir", type=types.path,
                   help="map every SCENE to DIR/<scene file stem>.tif (Cloud-Optimized GeoTIFF), "
                        "then one VRT mosaic per CRS; resumable, shareable between workers")
    p.add_argument("--shard", metavar="I/N",
                   help="do share I of N of the work (0 <= I < N), for SLURM arrays, AWS Batch "
                        "or any scheduler; under torchrun the rank and world size are used")
    p.add_argument("--confidence-maps", action="store_true",
                   help="with --out-dir: also write DIR/<stem>_confidence.tif and their mosaics")
    p.add_argument("--max-unit-mb", type=types.positive_float, default=16.0,
                   help="with --out-dir: MiB of scene pixels one unit of work reads (16); "
                        "smaller units share the work more evenly")
    p.add_argument("--threads", type=types.positive_int, default=None,
                   help="torch CPU threads of this process (default: every core; under torchrun "
                        "cores // ranks on the machine); several --shard jobs sharing a machine "
                        "should split its cores")


def wants_campaign(args: argparse.Namespace) -> bool:
    """Many scenes, an output folder, a shard or torchrun: the campaign mode."""
    return (args.out_dir is not None or len(args.scene) > 1 or args.shard is not None
            or int(os.environ.get("WORLD_SIZE", "1")) > 1)


def run_campaign(args: argparse.Namespace) -> int:
    """Run this worker's share of the campaign and print what it did."""
    from hsizoo.cli import UsageError
    from hsizoo.predict.campaign import map_scenes, parse_shard

    if args.out_dir is None:
        raise UsageError("Several scenes (or --shard, or torchrun) need --out-dir DIR: each "
                         "scene is mapped to DIR/<scene file stem>.tif.")
    for opt in ("out", "confidence", "quicklook"):
        if getattr(args, opt, None) is not None:
            raise UsageError(f"--{opt} names one file; with --out-dir every scene gets its own "
                             "(use --confidence-maps for confidence maps).")
    if args.shard is not None:
        try:
            parse_shard(args.shard)
        except ValueError as e:
            raise UsageError(str(e)) from None
    out_dir = Path(os.path.expanduser(args.out_dir))
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out-dir {out_dir} is a file; give a folder.")
    for s in args.scene:
        target = out_dir / f"{Path(s).stem}.tif"
        if target.exists() and os.path.samefile(target, s):
            raise UsageError(f"The map of {s} would replace the scene itself ({target}); choose "
                             "another --out-dir.")
    manifest = map_scenes(args.model, args.scene, out_dir, shard=args.shard,
                          device=args.device, precision=args.precision,
                          confidence=args.confidence_maps, overwrite=args.overwrite,
                          max_unit_mb=args.max_unit_mb, wavelengths=args.wavelengths,
                           sensor=args.sensor, progress=not args.quiet, threads=args.threads)
    if getattr(args, "json", False):
        from hsizoo.cli import print_json

        print_json(dict(command="predict", out_dir=str(out_dir), rank=manifest["rank"],
                        world=manifest["world"], units_computed=len(manifest["units"]),
                        units_skipped=len(manifest["skipped"]), scenes=manifest["assembled"],
                        mosaics=[str(m) for m in manifest["mosaics"]]))
        return 0
    who = f"worker {manifest['rank']} of {manifest['world']}"
    print(f"{who}: {len(manifest['units'])} units computed, {len(manifest['skipped'])} already "
          f"done, {len(manifest['assembled'])} scenes written to {out_dir}"
          + (f"; mosaics: {', '.join(Path(m).name for m in manifest['mosaics'])}"
             if manifest["mosaics"] else ""))
    return 0
