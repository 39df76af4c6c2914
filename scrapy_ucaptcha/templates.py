"""Per-domain templates (``UCAPTCHA_TASKS``) and the ``ucaptcha_task`` meta key.

A template says, for the URLs its pattern matches, how to recognise a challenge, which createTask
``task`` to send (fields the page provides — ``websiteURL``, ``websiteKey``, action, ``data-s``…
— are filled from the detected challenge), how the token goes back (``inject``), routing
(``selectionMode``/``provider``), and whether one solve serves the whole domain (``scope``).

Patterns: ``"example.com"`` (that host), ``"*.example.com"`` (its subdomains), ``"*"`` (any host),
each optionally followed by a path glob: ``"example.com/api/*"``. The most specific pattern wins:
an exact host before a wildcard host before ``"*"``, and a longer path before a shorter one.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any
from urllib.parse import SplitResult, urlsplit

from scrapy_ucaptcha.dialects import DIALECTS
from scrapy_ucaptcha.planner import KEY_FIELDS, build_task, family_of, kind_for_task_type
from scrapy_ucaptcha.vocabulary import (
    INJECT_MODES,
    SCOPES,
    SELECTION_MODES,
    InjectMode,
    Scope,
    SelectionMode,
)

__all__ = [
    "DEFAULT_TASK_TYPES",
    "INJECT_MODES",
    "SCOPES",
    "SELECTION_MODES",
    "DetectRules",
    "InjectSpec",
    "Template",
    "TemplateSet",
    "build_task",
    "family_of",
    "kind_for_task_type",
]

#: createTask type per captcha kind at uCaptcha; each provider's are in its dialect
#: (:mod:`scrapy_ucaptcha.dialects`). Override with ``UCAPTCHA_TASK_TYPES`` or a template's task.
DEFAULT_TASK_TYPES: Mapping[str, str] = DIALECTS["ucaptcha"].task_types

_TEMPLATE_KEYS = {
    "task",
    "challenge_url",
    "detect",
    "inject",
    "selectionMode",
    "provider",
    "scope",
    "solve",
    "presolve",
}
_DETECT_KEYS = {"status", "css", "xpath", "regex", "builtin", "image"}
_INJECT_KEYS = {"mode", "name", "format", "function", "fields"}


@dataclass(frozen=True)
class DetectRules:
    """When a response counts as a challenge on this template's URLs.

    ``status``: only these HTTP statuses can be challenges. ``css``/``xpath``/``regex``: at least
    one must match (a marker of the challenge). ``builtin``: use the built-in detectors to find the
    widget and its parameters (default ``True``); with ``False`` the markers alone decide and the
    task must be complete in the template. ``image_css``/``image_xpath``/``image_field``: an image
    captcha: where its ``<img>`` is and which input takes the answer.
    """

    status: frozenset[int] | None = None
    css: str | None = None
    xpath: str | None = None
    regex: re.Pattern[str] | None = None
    builtin: bool = True
    image_css: str | None = None
    image_xpath: str | None = None
    image_field: str | None = None

    @property
    def has_markers(self) -> bool:
        return bool(self.css or self.xpath or self.regex)

    @property
    def is_image(self) -> bool:
        return bool(self.image_css or self.image_xpath)


@dataclass(frozen=True)
class InjectSpec:
    """How the token goes back to the site.

    ``mode``: ``auto`` (submit the challenge page's form, the usual interstitial), ``form`` (the
    same, or for a presolved request: a field of its own form body), ``header``, ``cookie``,
    ``query``, ``json`` (a key of the JSON body) or ``callable``. ``name``: the field, header,
    cookie, parameter or key (for ``form``, defaults to the widget's response field).
    ``format``: how the value is written, ``"{token}"`` by default (e.g. ``"Bearer {token}"``).
    ``function``: import path of ``f(request, token, solution) -> Request`` for ``callable``.
    ``fields``: for multi-field solutions (GeeTest), form field or JSON key → solution key; the
    default is the kind's own fields (see :data:`~scrapy_ucaptcha.fields.SOLUTION_FIELDS`).
    """

    mode: InjectMode = "auto"
    name: str | None = None
    format: str = "{token}"
    function: str | None = None
    fields: tuple[tuple[str, str], ...] | None = None


@dataclass(frozen=True)
class Template:
    """One checked ``UCAPTCHA_TASKS`` entry (or a template merged with ``ucaptcha_task`` meta)."""

    pattern: str = "*"
    task: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    detect: DetectRules | None = None
    inject: InjectSpec = field(default_factory=InjectSpec)
    selection_mode: SelectionMode | None = None
    provider: str | None = None
    scope: Scope = "request"
    solve: bool = True
    presolve: bool = False
    #: GeeTest v3: where a fresh ``gt``/``challenge`` is fetched (JSON) before each task.
    challenge_url: str | None = None

    @classmethod
    def parse(cls, pattern: str, raw: Any) -> Template:
        """Check one template dict; raise :class:`ValueError` saying what is wrong."""
        where = f"template {pattern!r}"
        if not isinstance(raw, Mapping):
            raise ValueError(f"{where} must be a dict, got {type(raw).__name__}")
        unknown = set(raw) - _TEMPLATE_KEYS
        if unknown:
            raise ValueError(
                f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(_TEMPLATE_KEYS)}"
            )
        task = raw.get("task", {})
        if not isinstance(task, Mapping) or not all(isinstance(k, str) for k in task):
            raise ValueError(f"{where}: 'task' must be a dict of createTask task fields")
        if "type" in task and (not isinstance(task["type"], str) or not task["type"]):
            raise ValueError(f"{where}: task 'type' must be a non-empty string")
        scope = raw.get("scope", "request")
        if scope not in SCOPES:
            raise ValueError(f"{where}: 'scope' must be one of {SCOPES}, got {scope!r}")
        for key in ("selectionMode", "provider"):
            if raw.get(key) is not None and not isinstance(raw[key], str):
                raise ValueError(f"{where}: {key!r} must be a string")
        mode = raw.get("selectionMode")
        if mode is not None and mode not in SELECTION_MODES:
            raise ValueError(
                f"{where}: 'selectionMode' must be one of {', '.join(SELECTION_MODES)}, "
                f"got {mode!r}"
            )
        for key in ("solve", "presolve"):
            if not isinstance(raw.get(key, False), bool):
                raise ValueError(f"{where}: {key!r} must be True or False")
        challenge_url = raw.get("challenge_url")
        if challenge_url is not None and (not isinstance(challenge_url, str) or not challenge_url):
            raise ValueError(f"{where}: 'challenge_url' must be a URL (absolute or page-relative)")
        return cls(
            challenge_url=challenge_url,
            pattern=pattern,
            task=MappingProxyType(dict(task)),
            detect=_parse_detect(where, raw.get("detect")),
            inject=_parse_inject(where, raw.get("inject")),
            selection_mode=raw.get("selectionMode"),
            provider=raw.get("provider"),
            scope=scope,
            solve=raw.get("solve", True),
            presolve=raw.get("presolve", False),
        )

    def merged(self, override: Mapping[str, Any]) -> Template:
        """This template with a ``ucaptcha_task`` meta dict laid over it (``task`` key-wise)."""
        other = Template.parse(self.pattern, override)
        task = {**self.task, **other.task}
        return replace(
            self,
            task=MappingProxyType(task),
            detect=other.detect if "detect" in override else self.detect,
            inject=other.inject if "inject" in override else self.inject,
            selection_mode=other.selection_mode
            if "selectionMode" in override
            else self.selection_mode,
            provider=other.provider if "provider" in override else self.provider,
            scope=other.scope if "scope" in override else self.scope,
            solve=other.solve if "solve" in override else self.solve,
            presolve=other.presolve if "presolve" in override else self.presolve,
            challenge_url=other.challenge_url
            if "challenge_url" in override
            else self.challenge_url,
        )


def _parse_detect(where: str, raw: Any) -> DetectRules | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: 'detect' must be a dict")
    unknown = set(raw) - _DETECT_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown detect key(s) {sorted(unknown)}")
    status = raw.get("status")
    if status is not None:
        if isinstance(status, int):
            status = [status]
        if not isinstance(status, (list, tuple, set, frozenset)) or not all(
            isinstance(s, int) and not isinstance(s, bool) and 100 <= s <= 599 for s in status
        ):
            raise ValueError(f"{where}: detect 'status' must be a list of HTTP status codes")
        status = frozenset(status)
    for key in ("css", "xpath", "regex"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise ValueError(f"{where}: detect {key!r} must be a string")
    _check_selectors(where, raw.get("css"), raw.get("xpath"))
    try:
        regex = re.compile(raw["regex"]) if raw.get("regex") else None
    except re.error as exc:
        raise ValueError(f"{where}: detect 'regex' does not compile: {exc}") from None
    image = raw.get("image")
    image_css = image_xpath = image_field = None
    if image is not None:
        if not isinstance(image, Mapping) or not (image.get("css") or image.get("xpath")):
            raise ValueError(f"{where}: detect 'image' must be a dict with 'css' or 'xpath'")
        unknown = set(image) - {"css", "xpath", "field"}
        if unknown:
            raise ValueError(f"{where}: unknown detect image key(s) {sorted(unknown)}")
        for key in ("css", "xpath", "field"):
            if image.get(key) is not None and not isinstance(image[key], str):
                raise ValueError(f"{where}: detect image {key!r} must be a string")
        image_css, image_xpath = image.get("css"), image.get("xpath")
        image_field = image.get("field")
        _check_selectors(where, image_css, image_xpath)
    builtin = raw.get("builtin", True)
    if not isinstance(builtin, bool):
        raise ValueError(f"{where}: detect 'builtin' must be True or False")
    return DetectRules(
        status=status,
        css=raw.get("css"),
        xpath=raw.get("xpath"),
        regex=regex,
        builtin=builtin,
        image_css=image_css,
        image_xpath=image_xpath,
        image_field=image_field,
    )


def _check_selectors(where: str, css: str | None, xpath: str | None) -> None:
    from parsel import Selector  # noqa: PLC0415  (parsel comes with Scrapy)

    probe = Selector(text="<html></html>")
    try:
        if css:
            probe.css(css)
        if xpath:
            probe.xpath(xpath)
    except (ValueError, SyntaxError) as exc:  # cssselect's SelectorSyntaxError is a SyntaxError
        raise ValueError(f"{where}: bad selector: {exc}") from None


def _parse_inject(where: str, raw: Any) -> InjectSpec:
    if raw is None:
        return InjectSpec()
    if isinstance(raw, str):
        raw = {"mode": raw}
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: 'inject' must be a dict (or a mode name)")
    unknown = set(raw) - _INJECT_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown inject key(s) {sorted(unknown)}")
    mode = raw.get("mode", "auto")
    if mode not in INJECT_MODES:
        raise ValueError(f"{where}: inject 'mode' must be one of {INJECT_MODES}, got {mode!r}")
    name = raw.get("name")
    if name is not None and (not isinstance(name, str) or not name):
        raise ValueError(f"{where}: inject 'name' must be a non-empty string")
    fields = raw.get("fields")
    if fields is not None:
        if (
            not isinstance(fields, Mapping)
            or not fields
            or not all(
                isinstance(k, str) and k and isinstance(v, str) and v for k, v in fields.items()
            )
        ):
            raise ValueError(
                f"{where}: inject 'fields' must be a dict of field name -> solution key"
            )
        if mode not in ("auto", "form", "query", "json"):
            raise ValueError(f"{where}: inject 'fields' works with modes auto, form, query, json")
        fields = tuple(fields.items())
    if mode in ("header", "cookie", "query", "json") and not name and not fields:
        raise ValueError(f"{where}: inject mode {mode!r} needs a 'name'")
    fmt = raw.get("format", "{token}")
    if not isinstance(fmt, str) or "{token}" not in fmt:
        raise ValueError(f"{where}: inject 'format' must be a string containing '{{token}}'")
    function = raw.get("function")
    if mode == "callable":
        if not isinstance(function, str) or not function:
            raise ValueError(f"{where}: inject mode 'callable' needs 'function' (an import path)")
        from scrapy.utils.misc import load_object  # noqa: PLC0415

        try:
            if not callable(load_object(function.replace(":", "."))):
                raise TypeError
        except Exception:
            raise ValueError(f"{where}: inject function {function!r} cannot be imported") from None
    return InjectSpec(mode=mode, name=name, format=fmt, function=function, fields=fields)


_HOST_PATTERN = re.compile(r"^(\*|(\*\.)?[^*/:\s]+)(:\d{1,5})?$")


@dataclass(frozen=True)
class _Entry:
    host: str  # exact host, "*.suffix" or "*"
    port: int | None
    path: str | None  # path glob or None
    template: Template

    def rank(self) -> tuple[int, int, int, int]:
        host_rank = 0 if self.host == "*" else 1 if self.host.startswith("*.") else 2
        return host_rank, len(self.host), self.port is not None, len(self.path or "")

    def matches(self, host: str, port: int | None, path: str) -> bool:
        if self.host.startswith("*."):
            if not host.endswith(self.host[1:]):
                return False
        elif self.host not in ("*", host):
            return False
        if self.port is not None and self.port != port:
            return False
        return self.path is None or fnmatch.fnmatchcase(path, self.path)


@dataclass(frozen=True)
class TemplateSet:
    """All templates, most specific first; :meth:`for_url` picks one."""

    entries: tuple[_Entry, ...] = ()

    @classmethod
    def from_setting(cls, raw: Mapping[str, Any]) -> TemplateSet:
        entries = []
        for pattern, value in raw.items():
            if not isinstance(pattern, str) or not pattern.strip():
                raise ValueError(f"patterns must be non-empty strings, got {pattern!r}")
            netloc, slash, path = pattern.strip().partition("/")
            found = _HOST_PATTERN.match(netloc.lower())
            if found is None:
                raise ValueError(
                    f"bad pattern {pattern!r}: use 'example.com', '*.example.com' or '*' "
                    "(optionally with ':port'), optionally followed by a path glob such as '/api/*'"
                )
            template = Template.parse(pattern, value)
            _check_complete(template)
            entries.append(
                _Entry(
                    host=found.group(1),
                    port=int(found.group(3)[1:]) if found.group(3) else None,
                    path=slash + path if slash else None,
                    template=template,
                )
            )
        entries.sort(key=_Entry.rank, reverse=True)
        return cls(tuple(entries))

    def for_url(self, url: str) -> Template:
        """The most specific template for ``url``, or an empty default template."""
        if not self.entries:
            return _DEFAULT
        parts = urlsplit(url)
        host, port = _host_and_port(parts.scheme, parts.netloc)
        for entry in self.entries:
            if entry.matches(host, port, parts.path or "/"):
                return entry.template
        return _DEFAULT

    def get(self, pattern: str) -> Template:
        """The template of ``pattern`` (as :meth:`for_url` returned it), or the default one."""
        for entry in self.entries:
            if entry.template.pattern == pattern:
                return entry.template
        return _DEFAULT


_DEFAULT = Template()


@functools.lru_cache(maxsize=1024)
def _host_and_port(scheme: str, netloc: str) -> tuple[str, int | None]:
    """The lowercase host and the port (the scheme's default when none is given) of a URL: once
    per host, rather than once per response."""
    parts = SplitResult(scheme, netloc, "", "", "")
    host = (parts.hostname or "").lower()
    try:
        port = parts.port or {"http": 80, "https": 443}.get(scheme)
    except ValueError:
        port = None
    return host, port


def _check_complete(template: Template) -> None:
    """A template whose markers alone decide (``builtin: False``) must give the whole task."""
    rules = template.detect
    if rules is None or rules.builtin or rules.is_image:
        return
    task_type = template.task.get("type")
    if not isinstance(task_type, str):
        raise ValueError(
            f"template {template.pattern!r}: with detect 'builtin': False the task needs a 'type'"
        )
    kind = kind_for_task_type(task_type, template.task.get("version"))
    key_field = KEY_FIELDS.get(family_of(kind), "websiteKey")
    if kind not in ("image", "custom") and not template.task.get(key_field):
        raise ValueError(
            f"template {template.pattern!r}: with detect 'builtin': False a {task_type} task "
            f"needs its {key_field!r} (the page cannot provide it)"
        )
