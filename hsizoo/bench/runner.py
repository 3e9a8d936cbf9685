"""The few-shot benchmark runner: every method on identical splits, one JSON file per run.

A *run* is one (scene, method, shots, seed). Its split is :func:`hsizoo.data.splits.few_shot_split`
of the scene's labels with that seed (``shots`` labelled pixels per class for training, every
other labelled pixel for testing), drawn once and handed to every method, so all methods see the
same training pixels; each result file stores the training pixel indices to prove it.

The seed also seeds training, unless ``train_seeds`` are given: then every split is trained once
per training seed (``shots<k>_seed<s>_train<t>.json`` for ``t != s``), so that the training noise
of a method (about 1.3 points OA sd on one split for the full method) can be averaged out; the
summaries and paired tables average a split's runs before comparing splits.

Each finished run writes ``<out>/<scene>/<method>/shots<k>_seed<s>.json`` (written atomically,
last), so an interrupted benchmark resumes where it stopped: existing files are skipped unless
``force``. Runs go seed by seed (all scenes, shot counts and methods of seed 0 first), so a
benchmark cut short by ``time_limit`` still compares all methods on the seeds it finished. For
one seed (``map_seed``, default 0) the predicted class map is saved beside the JSON as a
compressed ``.npz`` for the report's map figures (the whole scene for real scenes, the labelled
pixels for simulated ones: ``map_extent``).

Timing: ``train_s`` is the wall time of fitting on the shots (feature extraction and scene
standardisation included); ``predict_s`` the wall time of classifying the test pixels (mapping
the rest of the scene for the saved map is timed apart, as ``map_s``). Memory: the resident set
size of this process is sampled every 10 ms from ``/proc/self/statm`` during the run
(``peak_rss_mb``, and ``peak_rss_delta_mb`` above the run's start); runs share one process, so
``process_maxrss_mb`` (``getrusage``) is the peak of the whole process so far, not of the run.

The methods and their options live in :mod:`hsizoo.bench.methods`, the result-file helpers in
:mod:`hsizoo.bench.records`, the command line in :mod:`hsizoo.cli.bench`.
"""
from __future__ import annotations

import hashlib
import json
import time
import traceback
import warnings
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from hsizoo.bench.methods import (METHODS, SCHEMA, BenchOptions, MethodSpec, SkipMethod, _fit,
                      method_settings, checkpoint_for_role)
from hsizoo.bench.records import PeakMemory, _atomic_write, _jsonable, default_environment, result_path

__all__ = ["BenchSummary", "DEFAULT_SCENES", "DEFAULT_SHOTS", "DEFAULT_SEEDS", "run_benchmark",
           "run_one"]

DEFAULT_SCENES = ("indian_pines", "simulated:rosis:pavia_university:0",
                  "simulated:enmap:salinas:0", "simulated:prisma:ksc:0")
DEFAULT_SHOTS = (1, 5, 10)
DEFAULT_SEEDS = tuple(range(10))


# ----------------------------------------------------------------------------------------------
# One run


def _split(labels: np.ndarray, shots: int, seed: int) -> tuple[Any, list[str]]:
    from hsizoo.data.splits import few_shot_split

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        split = few_shot_split(labels, shots, seed)
    return split, [str(w.message) for w in caught]




def run_one(scene_spec: str, scene: Any, spec: MethodSpec, shots: int, seed: int,
            opts: BenchOptions, out_dir: Path, environment: dict[str, Any],
            split: Any = None, split_warnings: Sequence[str] = (),
            train_seed: int | None = None) -> dict[str, Any]:
    """Train one method on one split, evaluate it, write its JSON (and map), return the record.

    Args:
        scene_spec: The scene's spec (its name in the results).
        scene: The loaded scene (with labels).
        spec: The method.
        shots: Training pixels per class.
        seed: Seed of the split (and of training when ``train_seed`` is None).
        opts: Benchmark options.
        out_dir: Results folder.
        environment: What the numbers were measured on.
        split: The split (drawn here when None).
        split_warnings: Warnings of drawing the split, stored with the result.
        train_seed: Seed of training (default: ``seed``).

    Returns:
        The stored record.
    """
    from hsizoo.data.metrics import evaluate

    if split is None:
        split, split_warnings = _split(scene.labels, shots, seed)
    train_seed = seed if train_seed is None else int(train_seed)
    K = int(max(int(scene.labels.max()), len(scene.class_names or [])))
    test = np.where(scene.valid, split.test, 0)
    tr, tc = np.nonzero(test)
    mem = PeakMemory()
    # The method sees the scene without its labels, and the shots: nothing else of the labels
    # reaches it (tests/bench/test_leaks.py).
    blind = replace(scene, labels=None)
    with mem:
        t0 = time.perf_counter()
        predict, info = _fit(spec, blind, split.train.copy(), train_seed, opts)
        t1 = time.perf_counter()
        pred_test = predict(tr, tc)
        t2 = time.perf_counter()
    pred = np.zeros(scene.labels.shape, dtype=np.int64)
    pred[tr, tc] = pred_test
    report = evaluate(test, pred, num_classes=K, class_names=scene.class_names)
    path = result_path(out_dir, scene_spec, spec.name, shots, seed, train_seed)
    map_file = None
    map_s = None
    extent = None
    if opts.map_seed is not None and seed == opts.map_seed and train_seed == seed:
        extent = opts.map_extent
        if extent == "auto":
            extent = "labelled" if (scene.meta or {}).get("simulated") else "all"
        if extent not in ("all", "labelled"):
            raise ValueError(f"map_extent must be 'auto', 'all' or 'labelled'; got {extent!r}.")
        region = scene.valid if extent == "all" else scene.valid & (scene.labels > 0)
        rest_r, rest_c = np.nonzero(region & (test == 0))
        t3 = time.perf_counter()
        if rest_r.size:
            pred[rest_r, rest_c] = predict(rest_r, rest_c)
        map_s = time.perf_counter() - t3
        dtype = np.uint8 if K < 256 else np.uint16
        map_path = path.with_name(path.stem + "_map.npz")

        def write_map(tmp: Path) -> None:
            # A file object, not a name: numpy would append ".npz" to the temporary name.
            with open(tmp, "wb") as f:
                np.savez_compressed(f, class_map=pred.astype(dtype),
                                    reference=scene.labels.astype(dtype),
                                    train=split.train.astype(dtype), valid=scene.valid)

        _atomic_write(map_path, write_map)
        map_file = map_path.name
    train_idx = np.flatnonzero(split.train.reshape(-1))
    record = {
        "schema": SCHEMA,
        "scene": scene_spec,
        "scene_info": {"shape": list(scene.cube.shape), "sensor": scene.sensor,
                       "num_classes": K, "class_names": list(scene.class_names or []),
                       "labelled": int(np.count_nonzero(scene.labels)),
                       "class_colors": (scene.meta or {}).get("class_colors")},
        "method": spec.name,
        "method_info": {"description": spec.description, "family": spec.family, **info},
        "shots": shots,
        "seed": seed,
        "train_seed": train_seed,
        "split": {"protocol": "hsizoo.data.splits.few_shot_split (random, min_test=1)",
                  "train_indices": train_idx.tolist(),
                  "train_sha256": hashlib.sha256(train_idx.astype(np.int64).tobytes()).hexdigest(),
                  "num_train": int(train_idx.size), "num_test": int(tr.size),
                  "per_class_train": split.per_class_train,
                  "per_class_test": split.per_class_test,
                  "short_classes": split.short_classes, "warnings": list(split_warnings)},
        "metrics": report.as_dict(),
        "oa": report.oa, "aa": report.aa, "kappa": report.kappa,
        "timing": {"train_s": t1 - t0, "predict_s": t2 - t1, "predict_pixels": int(tr.size),
                   "map_s": map_s},
        "memory": mem.as_dict(),
        "map_file": map_file,
        "map_extent": extent if map_file else None,
        "settings": method_settings(spec, opts),
        "options": asdict(opts),
        "environment": environment,
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    record = _jsonable(record)
    _atomic_write(path, lambda p: p.write_text(json.dumps(record, indent=1) + "\n"))
    return record


# ----------------------------------------------------------------------------------------------
# The benchmark


@dataclass
class BenchSummary:
    """What an invocation did.

    Attributes:
        done: Result files written.
        skipped_existing: Runs skipped because their result file exists.
        failed: (run description, error) of runs that raised.
        skipped: Reasons for scenes and methods that were left out.
        not_started: Runs left for later because the time limit was reached.
    """

    done: list[Path] = field(default_factory=list)
    skipped_existing: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    not_started: int = 0


def _load_scene(spec: str, data_root: str | None) -> Any:
    from hsizoo.pretrain import load_scene_spec

    scene = load_scene_spec(spec, data_root)
    if scene.labels is None or not np.any(scene.labels > 0):
        raise ValueError(f"scene {spec!r} has no labels to benchmark against")
    return scene


def _stored_settings(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("settings")
    except (OSError, ValueError):
        return None


def run_benchmark(scenes: Sequence[str] = DEFAULT_SCENES,
                  methods: Sequence[str] = tuple(METHODS), shots: Sequence[int] = DEFAULT_SHOTS,
                  seeds: Sequence[int] = DEFAULT_SEEDS, opts: BenchOptions | None = None,
                  out_dir: str | Path = "benchmarks/results/fewshot", *, force: bool = False,
                  time_limit: float | None = None, data_root: str | None = None,
                  environment: dict[str, Any] | None = None, dry_run: bool = False,
                  stop_on_error: bool = False,
                  scene_objects: dict[str, Any] | None = None,
                  train_seeds: Sequence[int] | None = None,
                  print_fn: Callable[[str], None] = print) -> BenchSummary:
    """Run (or resume) the few-shot benchmark.

    Args:
        scenes: Scene specs: "indian_pines" (real, from ``data_root``) or
            "simulated:<sensor>:<layout>:<seed>" (:func:`hsizoo.pretrain.load_scene_spec`).
        methods: Method names (:data:`METHODS`).
        shots: Training pixels per class.
        seeds: Split seeds (and training seeds unless ``train_seeds`` is given).
        opts: Method settings.
        out_dir: Results folder.
        force: Re-run and overwrite existing results.
        time_limit: Start no new run after this many seconds (the running one finishes).
        data_root: Folder of the real scenes (default ``$HSIZOO_DATA_DIR`` or ../shared/data/hsi).
        environment: Environment record stored with each result (default
            :func:`default_environment`).
        dry_run: Only print what would run.
        stop_on_error: Raise the first error instead of recording it and going on.
        scene_objects: Already loaded scenes by spec (skips loading them).
        train_seeds: Training seeds run on every split (default: the split's own seed only).
        print_fn: Where progress lines go.

    Returns:
        A :class:`BenchSummary`.

    Raises:
        ValueError: unknown method names, or bad shots / seeds.
    """
    t_start = time.perf_counter()
    opts = opts or BenchOptions()
    out = Path(out_dir)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"Unknown method(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(METHODS)}.")
    if not scenes or not methods:
        raise ValueError("Give at least one scene and one method.")
    if any(int(k) < 1 for k in shots):
        raise ValueError(f"shots must be >= 1; got {list(shots)}.")
    if train_seeds is not None and (not len(train_seeds) or any(int(t) < 0 for t in train_seeds)):
        raise ValueError(f"train_seeds must be non-negative integers; got {list(train_seeds)}.")
    summary = BenchSummary()

    # Methods that cannot run here are skipped once, with the reason.
    active: list[MethodSpec] = []
    for name in methods:
        spec = METHODS[name]
        try:
            if spec.checkpoint:
                checkpoint_for_role(opts.checkpoints.get(spec.checkpoint), spec.checkpoint,
                                   opts.model)
            if spec.name in ("svm_raw", "svm_filtered", "rf"):
                from hsizoo.bench.baselines import require_sklearn

                require_sklearn()
            active.append(spec)
        except (SkipMethod, ImportError) as e:
            summary.skipped.append(f"method {name}: {e}")
            print_fn(f"skip method {name}: {e}")

    jobs = [(seed, ts, sc, k, spec) for seed in seeds
            for ts in ((seed,) if train_seeds is None else train_seeds)
            for sc in scenes for k in shots for spec in active]
    pending = []
    differ: dict[str, int] = {}
    for job in jobs:
        seed, ts, sc, k, spec = job
        path = result_path(out, sc, spec.name, k, seed, ts)
        if not force and path.exists():
            summary.skipped_existing += 1
            # A resumed benchmark must not mix settings silently.
            want = _jsonable(method_settings(spec, opts))
            if _stored_settings(path) != want:
                differ[spec.name] = differ.get(spec.name, 0) + 1
        else:
            pending.append(job)
    for name, n in differ.items():
        msg = (f"warning: {n} stored result(s) of {name} were made with other settings than "
               f"now ({_jsonable(method_settings(METHODS[name], opts))}); they are kept. Pass "
               "--force to redo them, or --out another folder.")
        summary.skipped.append(msg)
        print_fn(msg)
    print_fn(f"{len(jobs)} runs ({len(scenes)} scene(s) x {len(active)} method(s) x "
             f"{len(shots)} shot count(s) x {len(seeds)} seed(s)"
             + (f" x {len(train_seeds)} training seed(s)" if train_seeds is not None else "")
             + f"); {summary.skipped_existing} "
             f"already stored in {out}, {len(pending)} to run")
    if dry_run:
        for seed, ts, sc, k, spec in pending:
            print_fn(f"  would run {sc} {spec.name} shots={k} seed={seed}"
                     + (f" train_seed={ts}" if ts != seed else ""))
        return summary

    env = environment if environment is not None else (default_environment() if pending else {})
    loaded: dict[str, Any] = dict(scene_objects or {})
    bad_scenes: dict[str, str] = {}
    splits: dict[tuple[str, int, int], tuple[Any, list[str]]] = {}
    for i, (seed, ts, sc, k, spec) in enumerate(pending):
        if time_limit is not None and time.perf_counter() - t_start > time_limit:
            summary.not_started = len(pending) - i
            print_fn(f"time limit of {time_limit:.0f} s reached: {summary.not_started} run(s) "
                     "left for the next invocation (it resumes here)")
            break
        if sc in bad_scenes:
            continue
        if not force and result_path(out, sc, spec.name, k, seed, ts).exists():
            # Written meanwhile by another process working on the same folder.
            summary.skipped_existing += 1
            continue
        if sc not in loaded:
            try:
                loaded[sc] = _load_scene(sc, data_root)
            except (FileNotFoundError, ValueError) as e:
                bad_scenes[sc] = str(e)
                summary.skipped.append(f"scene {sc}: {e}")
                print_fn(f"skip scene {sc}: {e}")
                continue
        scene = loaded[sc]
        if (sc, k, seed) not in splits:
            splits[(sc, k, seed)] = _split(scene.labels, k, seed)
        split, split_warn = splits[(sc, k, seed)]
        label = f"{sc} {spec.name} shots={k} seed={seed}" + (f" train_seed={ts}" if ts != seed
                                                                else "")
        try:
            rec = run_one(sc, scene, spec, k, seed, opts, out, env, split, split_warn, ts)
        except SkipMethod as e:
            summary.skipped.append(f"{label}: {e}")
            print_fn(f"[{i + 1}/{len(pending)}] skip {label}: {e}")
            continue
        except Exception as e:  # noqa: BLE001 - one failing run must not lose the others
            if stop_on_error:
                raise
            summary.failed.append((label, f"{type(e).__name__}: {e}"))
            print_fn(f"[{i + 1}/{len(pending)}] FAILED {label}: {type(e).__name__}: {e}")
            print_fn("".join(traceback.format_exception(type(e), e, e.__traceback__)[-3:]))
            continue
        summary.done.append(result_path(out, sc, spec.name, k, seed, ts))
        t = rec["timing"]
        peak = rec["memory"].get("peak_rss_mb") or rec["memory"].get("process_maxrss_mb")
        print_fn(f"[{i + 1}/{len(pending)}] {label}: OA {100 * rec['oa']:.2f} %  AA "
                 f"{100 * rec['aa']:.2f} %  kappa {rec['kappa']:.3f}  (train {t['train_s']:.1f} s,"
                 f" predict {t['predict_s']:.1f} s"
                 + (f", peak {peak:.0f} MB)" if peak is not None else ")"))
    print_fn(f"done: {len(summary.done)} written, {summary.skipped_existing} already stored, "
             f"{len(summary.failed)} failed, {summary.not_started} left for later")
    return summary
