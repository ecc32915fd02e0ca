"""scripts/bootstrap.sh as a newcomer runs it, in a copy of the checkout: `--extra client`
adds the Python client's live inbox (aiohttp) to the service's install, which the docs'
multi-node rehearsal needs; bad arguments stop it before anything is created."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def checkout_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "checkout"
    copy.mkdir()
    for name in ("pyproject.toml", "uv.lock", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, copy / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "scripts", copy / "scripts", ignore=ignore)
    shutil.copytree(ROOT / "tidings", copy / "tidings", ignore=ignore)
    return copy


def bootstrap(copy: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "scripts/bootstrap.sh", *args], cwd=copy, text=True,
                          capture_output=True, timeout=600)


def test_bad_arguments_stop_before_a_venv_is_made(tmp_path: Path) -> None:
    copy = checkout_copy(tmp_path)
    for args in (["--extra"], ["--dev", "--latest"], ["--nope"]):
        result = bootstrap(copy, *args)
        assert result.returncode == 2, args
        assert "usage: bash scripts/bootstrap.sh" in result.stderr
    assert not (copy / ".venv").exists()


@pytest.mark.system  # a whole install in a new venv: about a minute
def test_an_extra_on_request_beside_the_service(tmp_path: Path) -> None:
    copy = checkout_copy(tmp_path)
    result = bootstrap(copy, "--extra", "client")
    assert result.returncode == 0, result.stderr
    python = str(copy / ".venv" / "bin" / "python")
    probe = subprocess.run(
        [python, "-c", "import aiohttp, socketio, tidings.client; "
                       "import importlib.util as u; print(u.find_spec('pytest') is None)"],
        text=True, capture_output=True, timeout=60)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "True"  # the test tools stay out: only what was asked
    unknown = bootstrap(copy, "--extra", "nope")
    assert unknown.returncode != 0 and "nope" in unknown.stderr
