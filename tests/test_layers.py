"""The package layering of tidings/ holds: `lint-imports` keeps every contract in
pyproject.toml's [tool.importlinter] (the picture: docs/ARCHITECTURE.md).

A new import that runs up the layers fails here, and so does a contract that ignores one:
the layering holds without exceptions.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"


def lint_imports() -> Path:
    """The venv's `lint-imports` script: it sits beside the interpreter running the tests."""
    bindir = Path(sys.executable).parent
    for name in ("lint-imports", "lint-imports.exe"):
        if (bindir / name).exists():
            return bindir / name
    raise AssertionError(f"no lint-imports beside {sys.executable}: bootstrap.sh --dev")


def test_no_import_runs_up_the_layers() -> None:
    # --no-cache: nothing written into the checkout, and no cache shared between the
    # suite's parallel workers; the whole graph takes well under a second.
    result = subprocess.run(
        [str(lint_imports()), "--no-cache", str(PYPROJECT)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, (
        "lint-imports found an import against the layering (docs/ARCHITECTURE.md):\n"
        + result.stdout + result.stderr
    )


def test_no_contract_lists_an_exception() -> None:
    # An `ignore_imports` entry would let an upward import pass the check above; the way
    # out of a wrong-way import is a Protocol owned by the lower layer, not an exception.
    text = PYPROJECT.read_text(encoding="utf-8")
    assert not re.search(r"^\s*ignore_imports\s*=", text, re.M), (
        "a contract in [tool.importlinter] ignores imports: move the code instead "
        "(docs/ARCHITECTURE.md, 'Where a new thing goes')")


MAX_MODULE_LINES = 300


def test_no_module_is_longer_than_a_reader_holds() -> None:
    # Small modules with one job each (STYLE): past 300 lines a module is doing two.
    long = {str(path.relative_to(ROOT)): lines
            for folder in ("tidings", "benchmarks")
            for path in sorted((ROOT / folder).rglob("*.py"))
            if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert long == {}, f"split these by job (docs/ARCHITECTURE.md): {long}"
