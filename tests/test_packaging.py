"""What the package declares matches what it is: imports, version, changelog, license, plugin."""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

import scrapy_ucaptcha
from scrapy_ucaptcha._version import __version__

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest brings tomli on Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
PACKAGE = Path(scrapy_ucaptcha.__file__).parent
#: Modules that only the pytest plugin imports: the ``testing`` extra declares them.
PLUGIN = PACKAGE / "testing" / "pytest_plugin.py"


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9_.\-]+", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def _optional_imports(tree: ast.AST) -> set[int]:
    """Ids of the import nodes inside ``try: ... except ImportError``: optional, not required."""
    optional: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
            isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
            for h in node.handlers
        ):
            optional.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return optional


def _imported_top_levels(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    optional = _optional_imports(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in optional:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def _distributions(modules: set[str]) -> set[str]:
    owners = metadata.packages_distributions()
    dists: set[str] = set()
    for module in modules - set(sys.stdlib_module_names) - {"scrapy_ucaptcha"}:
        assert module in owners, f"{module} is imported but no installed distribution provides it"
        dists.update(_name(d) for d in owners[module])
    return dists


def test_every_imported_distribution_is_declared_with_a_minimum() -> None:
    declared = {_name(r): r for r in PROJECT["dependencies"]}
    for requirement in declared.values():
        assert ">=" in requirement, f"{requirement}: declare the tested minimum"
    files = [p for p in PACKAGE.rglob("*.py") if p != PLUGIN]
    imported = _distributions(set().union(*(_imported_top_levels(p) for p in files)))
    assert imported - declared.keys() == set()


def test_the_plugin_needs_only_the_testing_extra() -> None:
    declared = {_name(r) for r in PROJECT["dependencies"]}
    testing = {_name(r) for r in PROJECT["optional-dependencies"]["testing"]}
    assert testing == {"pytest", "pytest-twisted"}
    imported = _distributions(_imported_top_levels(PLUGIN))
    assert imported - declared - testing == set()


def test_version_is_in_one_place() -> None:
    assert PROJECT["dynamic"] == ["version"]
    assert "version" not in PROJECT
    assert metadata.version("scrapy-ucaptcha") == __version__
    assert scrapy_ucaptcha.__version__ == __version__


def test_changes_start_with_this_version_and_a_date() -> None:
    changes = (ROOT / "CHANGES.md").read_text(encoding="utf-8")
    first = re.search(r"^## (.+)$", changes, re.M)
    assert first is not None
    assert re.fullmatch(rf"{re.escape(__version__)} \((unreleased, )?\d{{4}}-\d\d-\d\d\)", first[1])


def test_license_file_matches_the_declared_license() -> None:
    assert PROJECT["license"] == "BSD-3-Clause"
    assert PROJECT["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("BSD 3-Clause License")
    assert "Neither the name of the copyright holder" in text


def test_pytest_plugin_entry_point() -> None:
    (entry,) = [e for e in metadata.entry_points(group="pytest11") if e.name == "ucaptcha"]
    assert entry.value == "scrapy_ucaptcha.testing.pytest_plugin"
