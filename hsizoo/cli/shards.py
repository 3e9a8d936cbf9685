"""Command line of shard cutting: ``hsizoo shard-scenes SCENE [SCENE ...] --out DIR ...``."""
from __future__ import annotations

import argparse
import json
from typing import Any

from hsizoo.pretrain.shards import shard_scenes

SHARD_HELP = ("cut scenes (window by window) into memory-mappable patch shards for "
              "`hsizoo pretrain --shards`")


def _add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenes", nargs="+", metavar="SCENE",
                   help="GeoTIFF / ENVI files (read window by window), .mat files or scene specs")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="folder for the shards and index.json (a rerun skips verified shards)")
    p.add_argument("--patch-size", type=int, required=True, metavar="P",
                   help="odd patch size, at least the encoder's (larger leaves room for the "
                        "neighbouring view of --contrast-weight)")
    p.add_argument("--patches-per-shard", type=int, required=True, metavar="N",
                   help="patches per shard file; at least as many shards as torchrun processes "
                        "are needed")
    p.add_argument("--max-patches-per-scene", type=int, default=None, metavar="M",
                   help="cut at most M patches per scene around a seeded random choice of valid "
                        "pixels (default: one around every valid pixel)")
    p.add_argument("--seed", type=int, default=0, help="seed of that choice (default 0)")
    p.add_argument("--window-size", type=int, default=256, metavar="PIXELS",
                   help="rows and columns read at a time (default 256)")
    p.add_argument("--sensor", default=None, help="sensor preset for files without wavelengths")
    p.add_argument("--nodata", type=float, default=None, help="nodata value overriding the files'")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")


def _run(args: argparse.Namespace) -> int:
    index = shard_scenes(args.scenes, args.out, patch_size=args.patch_size,
                         patches_per_shard=args.patches_per_shard,
                         max_patches_per_scene=args.max_patches_per_scene, seed=args.seed,
                         window_size=args.window_size, sensor=args.sensor, nodata=args.nodata,
                         progress=not args.quiet)
    print(json.dumps(dict(out=str(args.out), scenes=len(index["scenes"]),
                          shards=len(index["shards"]),
                          patches=sum(e["patches"] for e in index["shards"]),
                          written=len(index["written"]), skipped=len(index["skipped"]))))
    return 0


def _command() -> Any:
    from hsizoo.cli import Command

    return Command(SHARD_HELP, _add_args, _run)


SHARD_COMMAND = _command()
