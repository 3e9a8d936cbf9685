"""The package's public names: hsizoo.finetune and hsizoo.pretrain are callable whatever the
import order (each is both a submodule and the function users call)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_SCRIPT = """
import numpy as np
{first}
import hsizoo
from hsizoo.io import Scene
assert callable(hsizoo.finetune) and callable(hsizoo.pretrain)
cube = np.random.default_rng(0).normal(1, 0.2, (6, 6, 12)).astype('float32')
scene = Scene(cube=cube, wavelengths=np.linspace(450, 2300, 12))
labels = np.zeros((6, 6), int)
try:
    hsizoo.finetune(scene, labels, shots=1, model='s2former_test', pretrained=False)
except ValueError as e:
    print('finetune-error:', e)
try:
    hsizoo.pretrain([], '/nonexistent/run')
except ValueError as e:
    print('pretrain-error:', e)
"""


def _run(first: str) -> str:
    proc = subprocess.run([sys.executable, "-c", _SCRIPT.format(first=first)], cwd=REPO,
                          capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
                               "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_functions_callable_after_importing_their_modules_first() -> None:
    for first in ("import hsizoo.finetune, hsizoo.pretrain",
                  "from hsizoo.cli.demo import demo; from hsizoo.pretrain import PretrainConfig",
                  ""):
        out = _run(first)
        # the calls reached the functions, which refused the bad input with their own messages
        assert "finetune-error:" in out and "label" in out.split("finetune-error:")[1].lower()
        assert "pretrain-error:" in out and "No scenes to pretrain on" in out
