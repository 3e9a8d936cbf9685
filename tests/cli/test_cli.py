"""The hsizoo command line: list, info, error handling, python -m hsizoo."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hsizoo.cli import COMMANDS, Command, main, register_command
from hsizoo.models._factory import create_model, list_models
from hsizoo.hub.save import save_pretrained

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_list_shows_every_registered_model(capsys) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert lines[0].split()[:2] == ["model", "params"]
    shown = [line.split()[0] for line in lines[1:]]
    assert shown == list_models()
    test_row = next(line for line in lines if line.startswith("s2former_test "))
    params = sum(p.numel() for p in create_model("s2former_test").parameters())
    assert f"{params:,}" in test_row.split()


def test_list_filter_and_no_match(capsys) -> None:
    assert main(["list", "s2former_b*"]) == 0
    assert [ln.split()[0] for ln in capsys.readouterr().out.splitlines()[1:]] == ["s2former_base"]
    assert main(["list", "nothing*"]) == 2
    assert "no model matches 'nothing*'" in capsys.readouterr().err


def test_info_prints_params_and_flops_per_pixel(capsys) -> None:
    assert main(["info", "s2former_test", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["parameters"] == sum(p.numel() for p in create_model("s2former_test").parameters())
    assert info["flops_per_pixel"] > 0
    assert "aviris_indian_pines (200 bands)" in info["flops_input"]
    assert info["model_args"]["embed_dim"] == 16
    assert main(["info", "s2former_test", "--bands", "30"]) == 0
    out = capsys.readouterr().out
    assert "parameters:" in out and "FLOPs per pixel:" in out and "30 bands" in out


def test_info_on_a_saved_folder_and_weight_sources(tmp_path, capsys) -> None:
    folder = save_pretrained(create_model("s2former_test", num_classes=5), tmp_path / "ck")
    assert main(["info", str(folder), "--sensor", "rosis"]) == 0
    out = capsys.readouterr().out
    assert "s2former_test" in out and "rosis" in out and '"num_classes": 5' in out


def test_user_errors_exit_2_without_traceback(capsys, tmp_path) -> None:
    assert main(["info", "s2former_tinny"]) == 2
    err = capsys.readouterr().err
    assert "Did you mean s2former_tiny" in err and "Traceback" not in err
    assert main(["info", "s2former_test", "--sensor", "nosuch"]) == 2
    assert "Unknown sensor" in capsys.readouterr().err
    assert main(["info", str(tmp_path / "missing")]) == 2
    assert main(["frobnicate"]) == 2  # argparse usage error
    assert main(["info", "s2former_test", "--bands", "0"]) == 2


def test_subcommands_are_registered_in_a_dict(capsys) -> None:
    calls = []
    cmd = Command("say hello", lambda p: p.add_argument("who"), lambda a: calls.append(a.who) or 0)
    register_command("hello-test", cmd)
    try:
        assert main(["hello-test", "world"]) == 0
        assert calls == ["world"]
        # Lazily imported commands are named "module:attribute".
        register_command("lazy-test", "hsizoo.cli:COMMANDS", help="not a command")
        assert main(["list", "s2former_test"]) == 0  # other lazy commands are not imported
    finally:
        COMMANDS.pop("hello-test", None)
        COMMANDS.pop("lazy-test", None)


def test_python_dash_m_hsizoo_list() -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run([sys.executable, "-m", "hsizoo", "list"], cwd=REPO_ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    for name in list_models():
        assert name in res.stdout
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("argv", [["--help"], ["list", "--help"]])
def test_help_exits_zero(argv, capsys) -> None:
    assert main(argv) == 0
    assert "usage: hsizoo" in capsys.readouterr().out
