"""Run timm's own model tests (its repository's tests/test_models.py) against hsizoo's models.

timm's test file is not part of hsizoo and nothing is downloaded here: pass its path, or unpack
the timm sdist of the installed version somewhere and point at it (or let the script find it
under /tmp/timm_src, where ``pip download timm==<version> --no-deps --no-binary :all:
-d /tmp/timm_src`` and ``tar xzf`` leave it)::

    python benchmarks/timm_model_tests.py [path/to/tests/test_models.py] [-k EXPR] [-- PYTEST ARGS]

The file is copied into a temporary folder next to a conftest.py that imports hsizoo (which
registers its models in timm's registry before the test module lists them), and pytest runs it
with ``-k "s2former or hybridsn"``. The summary line and the failures are printed; the exit status
is pytest's.

With timm 1.0.31 and torch 2.14.1: 48 passed, 12 failed, the 12 being TorchScript (34 passed and
26 failed before the forward_features layout and feature levels below; 8 passed and 52 failed
before the models took wavelength tensors and ran without them). What made the last 14 pass:

* test_model_default_cfgs (10) wants ``forward_features`` to be the unpooled map, in the
  model's ``output_fmt``, ``pool_size`` wide with ``num_features`` channels, ``forward_head``
  to pool it, and ``reset_classifier(0, "")`` to keep it. S2Former's is a (B, P, P, 2D) "NHWC"
  map (each pixel's spatial token, then the patch's mean spectral token) pooled by its centre
  pixel (``global_pool="centre"``), where it used to be tokens (B, P*P + groups, D); HybridSN's
  ``num_features`` is its map's channels (channels_2d) and ``head_hidden_size`` the dense
  layers' width, as MobileNetV3 separates its map from its pre-logits ``conv_head``.
* test_model_forward_features (4) wants >= 3 feature levels whose sizes follow their reductions.
  S2Former's levels are its embedding (the stem, as ResNet's) then every block, and
  s2former_test has 2 blocks (it had 1; no weights are published for it); HybridSN's valid
  3 x 3 convolutions shrink a 9 x 9 patch to 7, 5, 3, 1, so their reductions are the input side
  over the map's, 1, 1, 3, 9 (they were all 1, which timm's test reads as off by 2x or more).

Still failing, by design:

* test_model_forward_torchscript and test_model_forward_fx_torchscript (12): TorchScript is not
  supported (``{**kwargs}``, properties, the wavelength input's Python-side checks); use
  torch.compile or torch.export, which are tested in tests/models/test_deploy.py.
"""
from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CONFTEST = '''\
"""Makes hsizoo's models visible to timm's test module (they register on import)."""
import hsizoo  # noqa: F401
'''


def find_test_file(given: str | None) -> Path:
    """timm's tests/test_models.py: the given path, else the installed timm's unpacked sdist."""
    if given:
        path = Path(given)
        if not path.is_file():
            sys.exit(f"{path} is not a file; pass the path of timm's tests/test_models.py.")
        return path
    import timm

    pattern = f"/tmp/timm_src/timm-{timm.__version__}/tests/test_models.py"
    found = sorted(glob.glob(pattern))
    if not found:
        sys.exit(
            "timm's tests/test_models.py was not found. Pass its path, or unpack timm's sdist:\n"
            f"  pip download timm=={timm.__version__} --no-deps --no-binary :all: -d /tmp/timm_src"
            f" && tar xzf /tmp/timm_src/timm-{timm.__version__}.tar.gz -C /tmp/timm_src")
    return Path(found[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("test_file", nargs="?", help="timm's tests/test_models.py")
    parser.add_argument("-k", default="s2former or hybridsn", help="pytest -k expression")
    parser.add_argument("pytest_args", nargs=argparse.REMAINDER,
                        help="after --: more pytest arguments (e.g. -x, --durations=10)")
    args = parser.parse_args(argv)
    src = find_test_file(args.test_file)
    extra = [a for a in args.pytest_args if a != "--"]
    with tempfile.TemporaryDirectory(prefix="hsizoo_timm_tests_") as tmp:
        shutil.copy(src, Path(tmp) / "test_models.py")
        (Path(tmp) / "conftest.py").write_text(CONFTEST)
        (Path(tmp) / "pytest.ini").write_text("[pytest]\n")  # not hsizoo's settings
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE",
               "--tb=line", "-W", "ignore::pytest.PytestUnknownMarkWarning",
               "-k", args.k, "test_models.py", *extra]
        return subprocess.call(cmd, cwd=tmp, env=env)


if __name__ == "__main__":
    sys.exit(main())
