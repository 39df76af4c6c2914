"""The version matrix: the test suite on every supported Python, and on every declared minimum.

``nox -l`` lists the sessions; ``nox -s tests-3.12`` runs one, ``nox -s min`` the oldest versions
that ``pyproject.toml`` allows. Pythons are looked up on ``PATH`` and, where pyenv is installed,
among its versions.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import nox

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - nox itself runs on the newer Python in CI
    import tomli as tomllib

ROOT = Path(__file__).parent
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]

nox.options.sessions = ["tests", "min"]
nox.options.reuse_existing_virtualenvs = False
nox.options.error_on_missing_interpreters = True
nox.options.download_python = "never"  # the Pythons of the machine, or a clear failure


def _add_pyenv_pythons() -> None:
    """Let nox find ``python3.X`` among pyenv's versions when they are not on ``PATH``."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    if not root.is_dir():
        return
    found = []
    for wanted in PYTHONS:
        candidates = sorted(
            root.glob(f"{wanted}.*/bin/python{wanted}"),
            key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.parent.name)],
        )
        if candidates:
            found.append(str(candidates[-1].parent))
    os.environ["PATH"] = os.pathsep.join([*found, os.environ.get("PATH", "")])


_add_pyenv_pythons()


def _project() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        project: dict[str, object] = tomllib.load(f)["project"]
    return project


def minimum_pins() -> list[str]:
    """``name==X`` for every ``name>=X`` that the package and its test extras declare."""
    project = _project()
    extras = project["optional-dependencies"]
    assert isinstance(extras, dict)
    declared = [*project["dependencies"], *extras["testing"], *extras["test"]]  # type: ignore[misc]
    pins = []
    for requirement in declared:
        if requirement.startswith(f"{project['name']}["):  # an extra naming another one
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*>=\s*([^,;\s]+)", requirement)
        assert match, f"declare a lower bound as name>=version: {requirement!r}"
        name, _, version = match.groups()
        if name in LINT_TOOLS:
            continue
        pins.append(f"{name}=={version}")
    return pins


#: Not part of the test run: the newest ones lint in ``.ci/run``.
LINT_TOOLS = {"mypy", "ruff"}

#: Test tools that the oldest Scrapy needs pinned on a Python newer than it knows, with the reason.
TOOL_PINS: dict[str, list[str]] = {}


def _pytest(session: nox.Session) -> None:
    session.run("python", "-W", "error", "-c", "import scrapy_ucaptcha, scrapy_ucaptcha.testing")
    session.run("python", "-m", "pytest", "-q", *session.posargs)


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The newest release of every dependency on this Python."""
    session.install("-e", ".[test]", *TOOL_PINS.get(str(session.python), []))
    session.run("python", "-m", "pip", "list", "--format=freeze", silent=False)
    _pytest(session)


@nox.session(python=PYTHONS[0])
def min(session: nox.Session) -> None:
    """Every declared minimum (Scrapy, Twisted, treq, form2request, ...) on the oldest Python."""
    constraints = Path(session.create_tmp()) / "minimum.txt"
    constraints.write_text("\n".join(minimum_pins()) + "\n")
    session.install("-c", str(constraints), "-e", ".[test]")
    session.run("python", "-m", "pip", "list", "--format=freeze", silent=False)
    _pytest(session)


#: Every feature release of Scrapy since the minimum (the newest one is in ``tests``).
SCRAPY_RELEASES = ["2.14", "2.15", "2.16", "2.17", "2.18"]


@nox.session(python=PYTHONS[-1], default=False)
@nox.parametrize("scrapy", SCRAPY_RELEASES)
def scrapy(session: nox.Session, scrapy: str) -> None:
    """One older Scrapy release (its newest patch) with the newest of everything else it allows."""
    session.install("-e", ".[test]", f"scrapy~={scrapy}.0", *TOOL_PINS.get(scrapy, []))
    session.run("python", "-m", "pip", "list", "--format=freeze", silent=False)
    _pytest(session)
