"""The ``simulator`` and ``demo_site`` marks of the suite's fixtures (tests/conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from conftest import _marked


@dataclass
class _Mark:
    name: str
    args: tuple[object, ...]
    kwargs: dict[str, object]


@dataclass
class _CallSpec:
    params: dict[str, object]


@dataclass
class _Node:
    marker: _Mark
    callspec: _CallSpec = field(default_factory=lambda: _CallSpec({}))

    def get_closest_marker(self, name: str) -> _Mark | None:
        return self.marker if self.marker.name == name else None


@dataclass
class _Request:
    node: _Node


def _request(params: dict[str, object], **kwargs: Any) -> Any:
    return _Request(_Node(_Mark("simulator", (), kwargs), _CallSpec(params)))


def _config(dialect: str = "ucaptcha", seed: int = 0, **rest: Any) -> tuple[str, int]:
    return dialect, seed


def test_from_params_gets_the_tests_parameters_of_its_names() -> None:
    request = _request({"dialect": "capsolver", "seed": 3, "other": 1}, from_params=_config)
    assert _marked(request, "simulator") == ("capsolver", 3)


def test_a_parameter_the_test_lacks_fails_instead_of_keeping_the_default() -> None:
    request = _request({"provider": "capsolver", "seed": 3}, from_params=_config)
    with pytest.raises(TypeError, match=r"takes dialect, which is not among .*provider, seed"):
        _marked(request, "simulator")
    with pytest.raises(TypeError, match=r"takes dialect, seed, which are not among .*none"):
        _marked(_request({}, from_params=_config), "simulator")


def test_a_config_mark_is_copied_and_no_mark_gives_none() -> None:
    config = {"seed": 1}
    marked: Any = _Request(_Node(_Mark("simulator", (config,), {})))
    given = _marked(marked, "simulator")
    assert given == config
    assert given is not config
    assert _marked(_request({}), "demo_site") is None
