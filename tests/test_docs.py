"""The README and docs/ as a newcomer follows them: every link and anchor leads somewhere,
every extra a command names exists, no install line names a package that is not on PyPI
or an extra an older pip does not find, and the benchmarks' requirement list is the one
pyproject.toml and uv.lock hold."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", ROOT / "benchmarks" / "README.md",
                *(ROOT / "docs").glob("*.md")])
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def without_code(text: str) -> str:
    return re.sub(r"`[^`\n]*`", "", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation removed,
    spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"[`*]", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    for line in FENCE.sub("", page.read_text()).splitlines():
        match = re.match(r"#{1,6} (.+)", line)
        if match:
            base = slug(match.group(1))
            name, n = base, 0
            while name in found:
                n += 1
                name = f"{base}-{n}"
            found.add(name)
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_and_anchor_resolves(page: Path) -> None:
    broken = []
    for target in LINK.findall(without_code(page.read_text())):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(target)
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(target)
    assert broken == []


def test_every_extra_a_command_names_exists() -> None:
    extras = set(pyproject()["project"]["optional-dependencies"])
    named: set[str] = set()
    for page in PAGES:
        for _, code in FENCE.findall(page.read_text()):
            named.update(re.findall(r"--extra (\w+)", code))
            named.update(re.findall(r"tidings[^\s\[']*\[(\w+)\]", code))
    assert named and named <= extras, named - extras


def test_install_lines_name_what_any_pip_can_install() -> None:
    """Tidings is not on PyPI (install from a path or a wheel), and python-socketio's
    `asyncio_client` extra is not found by an older pip, which then installs no aiohttp."""
    for page in PAGES:
        for _, code in FENCE.findall(page.read_text()):
            for line in code.splitlines():
                if "pip install" in line:
                    assert not re.search(r"pip install\s+['\"]?tidings\b", line), line
                    assert "python-socketio[" not in line, line
    for name, requirements in pyproject()["project"]["optional-dependencies"].items():
        assert not any("[asyncio_client]" in r for r in requirements), name


def test_the_benchmarks_requirements_are_pyprojects_with_the_locked_versions() -> None:
    text = (ROOT / "benchmarks" / "README.md").read_text()
    block = FENCE.findall(text)[0][1]
    listed = {}
    for line in block.strip().splitlines():
        requirement, _, comment = line.partition("#")
        tested = re.findall(r"\(([\d.]+)\)\s*$", comment)
        assert tested, line
        listed[requirement.strip()] = tested[0]
    assert sorted(listed) == sorted(pyproject()["project"]["optional-dependencies"]["bench"])
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    locked = {package["name"]: package["version"] for package in lock["package"]}
    for requirement, version in listed.items():
        name = re.split(r"[<>=\[;]", requirement)[0]
        assert locked[name] == version, requirement


def test_the_readme_keeps_the_two_set_up_commands_and_a_contents_table() -> None:
    text = (ROOT / "README.md").read_text()
    assert "bash scripts/serve.sh     #" in text and "bash scripts/test.sh      #" in text
    linked = {target for target in LINK.findall(text) if target.startswith("docs/")}
    for page in (ROOT / "docs").glob("*.md"):
        assert f"docs/{page.name}" in linked, f"README does not link docs/{page.name}"
