"""Fuzzing the command line: random arguments never end in an uncaught exception.

Seeded random argument lists for ``hsizoo finetune / predict / download / list / info``, built
from valid and invalid values (negative, huge and non-finite numbers, empty and long strings,
unicode, paths that do not exist or are folders, the inputs themselves as outputs, unknown
options), run in-process through :func:`hsizoo.cli.main` on a tiny synthetic scene. Every case
must end with exit status 0, or 2 with one ``error:`` line on stderr, never a traceback; no
input of the case may change and no partial file may be left. (An output may replace a file of
the test's world that the case does not read; such files are put back after each case.)

Fine-tuning is stopped once its inputs are prepared (the scene read, the labels checked, the
model built): a valid case raises a sentinel there, which counts as a success. The slow test
lets some valid cases run to the end, writing their outputs. Nothing reaches the network: the
Hub is a local server in offline mode.

    python -m pytest -q tests/cli/test_cli_fuzz.py               # the default cases
    python -m pytest -q --runslow tests/cli/test_cli_fuzz.py     # and 1,200 more
"""
from __future__ import annotations

import os
import random
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest_io import make_cube, make_wavelengths, write_geotiff

from hsizoo.cli import main

DEFAULT_CASES = 300
SLOW_CASES = 1200


class _Reached(Exception):
    """Fine-tuning got valid inputs: the case succeeded (the stub stops it there)."""


class World:
    """The files the cases draw from, written once per test."""

    def __init__(self, root: Path) -> None:
        from hsizoo.cli import main as run

        self.root = root
        inp = root / "in"
        inp.mkdir()
        wl = make_wavelengths(6)
        self.scene = write_geotiff(inp / "scene.tif", make_cube(12, 10, 6).astype(np.float32),
                                   descriptions=[f"{v} nm" for v in wl])
        self.tiny = write_geotiff(inp / "tiny.tif", make_cube(3, 3, 6).astype(np.float32),
                                  descriptions=[f"{v} nm" for v in wl])
        labels = np.zeros((12, 10), dtype=np.int64)
        labels[:6], labels[6:] = 1, 2
        np.save(inp / "labels.npy", labels)
        self.labels = inp / "labels.npy"
        np.save(inp / "tiny_labels.npy", np.array([[1, 1, 2]] * 3))
        self.tiny_labels = inp / "tiny_labels.npy"
        self.wl_file = inp / "wl.txt"
        self.wl_file.write_text(", ".join(str(v) for v in wl) + "\n")
        self.binary = inp / "noise.bin"
        self.binary.write_bytes(bytes(range(256)) * 4)
        self.folder = inp / "a folder"
        self.folder.mkdir()
        self.wl = ",".join(str(v) for v in wl)
        self.model = root / "model"
        out = root / "first"
        out.mkdir()
        assert run(["finetune", str(self.scene), str(self.labels), "--out", str(out / "m.tif"),
                    "--save-model", str(self.model), "--model", "s2former_test",
                    "--no-pretrained", "--steps", "1", "--quiet"]) == 0
        self.out = root / "out"
        self.out.mkdir()
        self.existing = self.out / "existing.tif"
        self.existing.write_bytes(b"an older output")

    def snapshot(self) -> dict[Path, bytes]:
        """The bytes of every input file (the scene, labels, model folder, ...)."""
        return {p: p.read_bytes() for p in [*(self.root / "in").rglob("*"),
                                            *self.model.rglob("*")] if p.is_file()}

    def restore(self, snap: dict[Path, bytes]) -> list[Path]:
        """Put back the files a case replaced (an output may name a file that is not one of its
        own inputs); returns them."""
        changed = []
        for p, data in snap.items():
            if p.is_file() and not p.is_symlink() and p.read_bytes() == data:
                continue
            changed.append(p)
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            elif p.exists() or p.is_symlink():
                p.unlink()
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        return changed


OUTPUT_OPTIONS = ("--out", "--confidence", "--quicklook", "--save-model", "--to")


def _inputs_of(argv: list[str], snap: dict[Path, bytes]) -> set[Path]:
    """The world's files a case reads: paths in its arguments that are not output values."""
    named = set()
    for i, a in enumerate(argv):
        if i and argv[i - 1] in OUTPUT_OPTIONS:
            continue
        try:
            named.add(Path(os.path.realpath(os.path.expanduser(a))))
        except (OSError, ValueError):
            continue
    return {p for p in snap if p.resolve() in named or any(q in named
                                                              for q in p.resolve().parents)}


# ----------------------------------------------------------------------------- value pools

LONG = "x" * 300
UNICODE = ["ünïcødé", "日本語", "🙂", "\u202e", "tab\there"]
INTS = ["-1", "0", "1", "2", "3", "7", "64", "+5", "-0", "1.5", "1e3", "nan", "inf", "", " ",
        "abc", "9" * 40, str(2**63), str(2**64), "0x10", "1_000", "٣", LONG, *UNICODE]
FLOATS = ["-1", "0", "0.5", "1", "2.5", "1e-9", "1e300", "1e999", "nan", "-inf", "inf", "",
          "abc", "0.1.2", LONG, *UNICODE]


class Case:
    """Draws one argument list."""

    def __init__(self, rng: random.Random, w: World, index: int, full: bool) -> None:
        self.rng, self.w, self.i, self.full = rng, w, index, full

    def pick(self, bad: list, good: list, p_good: float = 0.7) -> object:
        """A value from ``good`` with probability ``p_good``, else from ``bad``."""
        return self.rng.choice(good if self.maybe(p_good) else bad)

    def maybe(self, p: float) -> bool:
        return self.rng.random() < p

    def path(self, right: object) -> str:
        """A path: mostly the right input, sometimes anything."""
        w = self.w
        wrong = [w.root / "missing.tif", w.folder, w.binary, "", LONG, w.wl_file, w.labels,
                 w.scene, w.model, w.tiny, w.root / "in" / "日本.tif", "/dev/null", "-",
                 "~nosuchuser/x", w.root / "in" / "." / "scene.tif"]
        return str(right if self.maybe(0.85) else self.rng.choice(wrong))

    def output(self, suffix: str, tag: str = "") -> str:
        w = self.w
        fresh = w.out / f"{self.i}{tag}{suffix}"
        wrong = [w.existing, w.folder, w.root / "nope" / f"x{suffix}", "", w.scene, w.labels,
                 w.wl_file, w.model / "config.json", w.root / "in" / ".." / "in" / "scene.tif",
                 w.out / (LONG + suffix), w.out / f"{self.i}_{self.rng.choice(UNICODE)}{suffix}",
                 w.model]
        return str(fresh if self.maybe(0.85) else self.rng.choice(wrong))

    def wavelengths(self) -> str:
        w = self.w
        good = [w.wl, str(w.wl_file), w.wl.replace(",", " ")]
        bad = ["", ",", "400,abc", "nan," * 5 + "1", "-400," * 6, "1e999", ",".join(["500"] * 5),
               ",".join(f"{v:.6f}" for v in np.linspace(400, 2500, 224)), str(w.folder),
               str(w.binary), LONG, "400;500;600;700;800;900", *UNICODE]
        return self.pick(bad, good)

    def device(self) -> str:
        return self.rng.choice(["cpu", "cpu", "cuda", "cuda:7", "", "tpu", "meta", "cpu:0",
                                "-1", LONG])

    def common(self, argv: list[str]) -> None:
        """Options of finetune and predict."""
        if self.maybe(0.25):
            argv += ["--confidence", self.output(".tif", "-confidence")]
        if self.maybe(0.15):
            argv += ["--quicklook", self.output(".png")]
        if self.maybe(0.2):
            argv += ["--sensor", self.rng.choice(["aviris_indian_pines", "rosis", "nosuch", "",
                                                  LONG])]
        if self.maybe(0.25):
            argv += ["--wavelengths", self.wavelengths()]
        if self.maybe(0.5):
            argv += ["--overwrite"]
        if self.maybe(0.9):
            argv += ["--quiet"]
        if self.maybe(0.15):
            argv += ["--device", self.device()]
        if self.maybe(0.15):
            argv += ["--precision", self.pick(["fp16", "fp64", ""], ["fp32", "bf16"])]

    def finetune(self) -> list[str]:
        tiny = self.maybe(0.05)  # smaller than the patch: refused
        argv = ["finetune", self.path(self.w.tiny if tiny else self.w.scene),
                self.path(self.w.tiny_labels if tiny else self.w.labels)]
        if self.maybe(0.95):
            argv += ["--out", self.output(".tif")]
        if self.maybe(0.3):
            argv += ["--shots", self.pick(INTS, ["1", "2", "5", "10"])]
        if self.maybe(0.15):
            argv += ["--all-labels"]
        if self.maybe(0.1):
            argv += ["--save-model", self.output("")]
        if self.maybe(0.1):
            argv += ["--eval-labels", self.path(self.w.labels)]
        model = self.rng.choice(["s2former_test"] * 6 + [
            "s2former_tinny", "", str(self.w.model), str(self.w.folder), "hf-hub:org/absent",
            "s2former_test.untrained", "s2former_tiny", LONG, "../../etc"])
        argv += ["--model", model]
        if self.maybe(0.9):
            argv += ["--no-pretrained"]
        if self.maybe(0.2):
            argv += ["--no-daft"]
        good_steps = ["0", "1", "2", "+1", "٣"]
        argv += ["--steps", self.pick(good_steps if self.full else INTS, good_steps, 0.85)]
        if self.maybe(0.2):
            argv += ["--time-budget", self.pick(FLOATS, ["0.5", "60", "1e300"])]
        if self.maybe(0.2):
            argv += ["--seed", self.pick(INTS, ["0", "1", str(2**63 - 1)])]
        self.common(argv)
        return argv

    def predict(self) -> list[str]:
        argv = ["predict", self.path(self.w.model), self.path(self.w.scene)]
        if self.maybe(0.95):
            argv += ["--out", self.output(".tif")]
        if self.maybe(0.3):
            argv += ["--window", self.pick(INTS, ["16", "64", "256", "100000", str(2**62)])]
        self.common(argv)
        return argv

    def download(self) -> list[str]:
        name = self.rng.choice([
            "s2former_tiny.ssl_simulated", "s2former_tiny", "s2former_tiny.ssl_indianpines",
            "hsizoo/s2former_tiny.ssl_simulated", "org/absent", "org/absent@v1", "org/absent@",
            "../../etc", "..", "/etc/passwd", "", " ", "a/b/c", "s2former_nope.x",
            "s2former_tiny.untrained", "hf-hub:", "hf-hub:org/x", "~/x", "C:\\x", LONG,
            *UNICODE])
        argv = ["download", name]
        if self.maybe(0.7):
            to = [self.w.out / f"dl{self.i}", self.w.existing, self.w.folder, "",
                  self.w.root / "nope" / "deeper", self.w.out / LONG, self.w.model]
            argv += ["--to", str(self.rng.choice(to))]
        if self.maybe(0.3):
            argv += ["--from", self.rng.choice(["auto", "package", "hub", "ftp", ""])]
        if self.maybe(0.2):
            argv += ["--revision", self.rng.choice(["main", "", "v1", LONG, "a/b"])]
        if self.maybe(0.3):
            argv += ["--overwrite"]
        return argv

    def list_(self) -> list[str]:
        argv = ["list"]
        if self.maybe(0.8):
            argv += [self.rng.choice(["s2former_t*", "s2former_test", "nothing*", "", "[",
                                      "*test*", LONG, *UNICODE])]
        if self.maybe(0.3):
            argv += ["--pretrained"]
        return argv

    def info(self) -> list[str]:
        argv = ["info", self.rng.choice(["s2former_test"] * 4 + [
            "s2former_tinny", "", str(self.w.model), str(self.w.folder), str(self.w.scene),
            str(self.w.root / "missing"), "hf-hub:org/absent", "s2former_test.untrained",
            LONG, *UNICODE])]
        if self.maybe(0.3):
            argv += ["--sensor", self.rng.choice(["rosis", "aviris_indian_pines", "nosuch", ""])]
        if self.maybe(0.3):
            argv += ["--bands", self.pick(INTS, ["1", "3", "30", "10000"])]
        if self.maybe(0.3):
            argv += ["--json"]
        return argv

    def draw(self) -> list[str]:
        kind = self.rng.choices(["finetune", "predict", "download", "list", "info"],
                                weights=[8, 3, 2, 1, 2])[0]
        argv = {"finetune": self.finetune, "predict": self.predict, "download": self.download,
                "list": self.list_, "info": self.info}[kind]()
        return self.mutate(argv)

    def mutate(self, argv: list[str]) -> list[str]:
        """Now and then: an unknown option, a lost value, a duplicate, a shuffled order."""
        r = self.rng
        if self.full:
            return argv
        if self.maybe(0.05):
            argv.insert(r.randrange(1, len(argv) + 1), r.choice(
                ["--frobnicate", "-x", "--steps=", "--", "--out", "--help-me", "-"]))
        if self.maybe(0.04) and len(argv) > 2:
            del argv[r.randrange(1, len(argv))]
        if self.maybe(0.04):
            argv.append(r.choice(argv[1:] or ["x"]))
        return argv


# ----------------------------------------------------------------------------- the runner


def _stop_after_prepare(monkeypatch, full: dict) -> None:
    """finetune() stops with _Reached once its inputs are prepared (unless a full run)."""
    import hsizoo.finetune

    package = sys.modules["hsizoo.finetune"]
    real = package.prepare

    def prepare(*a, **k):
        inputs = real(*a, **k)
        if not full["on"]:
            raise _Reached
        return inputs

    monkeypatch.setattr(package, "prepare", prepare)


def _check(argv: list[str], rc: object, err: str, w: World) -> str | None:
    """Why a finished case is wrong, or None."""
    if "Traceback" in err:
        return "a traceback on stderr"
    if rc == 2:
        lines = [ln for ln in err.splitlines() if ": error: " in ln]
        if len(lines) != 1 or not lines[0].startswith("hsizoo"):
            return f"not one error line: {err[-500:]!r}"
    elif rc != 0:
        return f"exit status {rc}"
    partials = [p.name for p in w.root.rglob("*.hsizoo-*")]
    if partials:
        return f"partial files left: {partials}"
    return None


def _fuzz(world: World, monkeypatch, capsys, seed: int, cases: int, full_every: int = 0
          ) -> dict[str, int]:
    full = {"on": False}
    _stop_after_prepare(monkeypatch, full)
    rng = random.Random(seed)
    snap = world.snapshot()
    faults: list[str] = []
    counts: dict[str, int] = {}
    for i in range(cases):
        full["on"] = bool(full_every) and i % full_every == 0
        argv = Case(rng, world, i, full["on"]).draw()
        try:
            rc: object = main(argv)
        except _Reached:
            rc = "reached"
        except SystemExit as e:
            rc = f"SystemExit({e.code})"
        except BaseException as e:  # noqa: BLE001 (the fault this test looks for)
            rc = f"{type(e).__name__}: {e}"[:300]
        out = capsys.readouterr()
        why = _check(argv, 0 if rc == "reached" else rc, out.err, world)
        changed = world.restore(snap)
        hurt = sorted(str(p) for p in _inputs_of(argv, snap) & set(changed))
        if hurt and why is None:
            why = f"an input changed: {hurt}"
        if why is not None:
            faults.append(f"case {i}: {argv!r}\n    -> rc {rc}: {why}")
        key = f"{argv[0]}:{'ok' if rc in (0, 'reached') else rc}"
        counts[key] = counts.get(key, 0) + 1
        if len(faults) >= 20:
            break
    assert not faults, f"{len(faults)} faults:\n" + "\n".join(faults)
    return counts


@pytest.fixture
def world(tmp_path, hub, monkeypatch) -> World:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # the local Hub, and not even that
    monkeypatch.delenv("HSIZOO_HUB_MIRROR", raising=False)
    monkeypatch.chdir(tmp_path)  # relative outputs ("" or "-") land here
    return World(tmp_path)


def test_random_arguments_end_in_status_0_or_one_error_line(world, monkeypatch, capsys) -> None:
    t0 = time.perf_counter()
    counts = _fuzz(world, monkeypatch, capsys, seed=0, cases=DEFAULT_CASES)
    assert sum(counts.values()) == DEFAULT_CASES
    # Both kinds of ending were exercised for the main commands.
    assert counts.get("finetune:ok", 0) >= 10 and counts.get("finetune:2", 0) >= 10, counts
    assert counts.get("predict:ok", 0) >= 5 and counts.get("predict:2", 0) >= 5, counts
    print(f"{DEFAULT_CASES} cases in {time.perf_counter() - t0:.1f} s: {counts}")


@pytest.mark.slow
def test_many_random_arguments_with_some_full_runs(world, monkeypatch, capsys) -> None:
    counts = _fuzz(world, monkeypatch, capsys, seed=1, cases=SLOW_CASES, full_every=10)
    assert sum(counts.values()) == SLOW_CASES
    assert counts.get("finetune:ok", 0) >= 50, counts
