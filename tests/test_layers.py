"""The package layering of tidings/ holds: `lint-imports` keeps every contract in
pyproject.toml's [tool.importlinter] (the picture: docs/ARCHITECTURE.md).

A new import that runs up the layers fails here. Today's known exceptions are the contracts'
`ignore_imports`, each marked with the issue that moves it; one that no longer matches an
import fails too (import-linter's default), so a move also removes its line.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
ISSUE_MARK = "# issue: folders that follow the data — "


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


def test_every_known_exception_says_what_should_move() -> None:
    # The ignore lists are a to-do list for the issue, not a place to park new imports.
    text = PYPROJECT.read_text(encoding="utf-8")
    section = text[text.index("[tool.importlinter]"):]
    entries = re.findall(r'^\s*"(tidings[\w.]* -> tidings[\w.]*)",(.*)$', section, re.M)
    assert entries, "no ignore_imports found in [tool.importlinter]"
    unmarked = [imp for imp, comment in entries
                if not comment.strip().startswith(ISSUE_MARK)
                or len(comment.strip()) <= len(ISSUE_MARK)]
    assert not unmarked, f"ignored imports without '{ISSUE_MARK}<what moves>': {unmarked}"
