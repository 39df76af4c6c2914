"""An ``HTTPCACHE_POLICY`` that never stores or replays a challenge page.

Scrapy's HttpCache middleware (priority 900) stores a response before any middleware below it sees
it. Without this policy a wall served with status 200 is cached and then replayed for the request
that carries the token, so every token looks rejected and is paid for again. This policy wraps the
configured one (``UCAPTCHA_HTTPCACHE_POLICY``, Scrapy's ``DummyPolicy`` by default): whatever the
detection calls a challenge is neither stored nor served from the cache; everything else is decided
by the wrapped policy. The add-on installs it whenever ``HTTPCACHE_ENABLED`` is on.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from contextlib import suppress
from typing import TYPE_CHECKING, Any, Protocol

from scrapy.exceptions import NotConfigured
from scrapy.responsetypes import responsetypes
from scrapy.utils.misc import load_object

from scrapy_ucaptcha.config import Config, ConfigError
from scrapy_ucaptcha.rules import find_challenge

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.http import Response
    from scrapy.settings import BaseSettings

__all__ = ["DEFAULT_INNER_POLICY", "UCaptchaCachePolicy"]

DEFAULT_INNER_POLICY = "scrapy.extensions.httpcache.DummyPolicy"
TASK_KEY = "ucaptcha_task"

#: Decoded bytes looked at to judge a compressed response: challenge pages are small, and the
#: judgement must cost little on any page.
MAX_DECODED = 2 * 1024 * 1024

Judge = Callable[["Response", "Request"], bool]


class _Policy(Protocol):
    def should_cache_request(self, request: Request) -> bool: ...

    def should_cache_response(self, response: Response, request: Request) -> bool: ...

    def is_cached_response_fresh(self, cachedresponse: Response, request: Request) -> bool: ...

    def is_cached_response_valid(
        self, cachedresponse: Response, response: Response, request: Request
    ) -> bool: ...


class UCaptchaCachePolicy:
    """Wraps another HttpCache policy; challenge pages are never stored nor replayed."""

    def __init__(self, settings: BaseSettings) -> None:
        inner_path = settings.get("UCAPTCHA_HTTPCACHE_POLICY") or DEFAULT_INNER_POLICY
        try:
            inner_cls = load_object(inner_path) if isinstance(inner_path, str) else inner_path
        except (ImportError, NameError, ValueError) as exc:
            raise ConfigError(
                f"UCAPTCHA_HTTPCACHE_POLICY: cannot load {inner_path!r}: {exc}"
            ) from None
        if isinstance(inner_cls, type) and issubclass(inner_cls, UCaptchaCachePolicy):
            raise ConfigError(
                "UCAPTCHA_HTTPCACHE_POLICY names scrapy_ucaptcha's own policy: set it to the "
                "policy to wrap (e.g. 'scrapy.extensions.httpcache.RFC2616Policy')"
            )
        self.inner: _Policy = inner_cls(settings)
        try:
            self._config: Config | None = Config.from_settings(settings)
        except NotConfigured:
            self._config = None  # scrapy-ucaptcha is off: the wrapped policy alone decides
        self._judge: Judge | None = None

    def judge_with(self, judge: Judge) -> None:
        """Let the middleware decide what a challenge is (it knows the spider's templates)."""
        self._judge = judge

    # --- the HttpCache policy interface ---------------------------------------------------------

    def should_cache_request(self, request: Request) -> bool:
        return self.inner.should_cache_request(request)

    def should_cache_response(self, response: Response, request: Request) -> bool:
        return self.inner.should_cache_response(response, request) and not self.is_challenge(
            response, request
        )

    def is_cached_response_fresh(self, cachedresponse: Response, request: Request) -> bool:
        # an entry stored before this policy was in place may be a challenge: never replay it
        return not self.is_challenge(cachedresponse, request) and (
            self.inner.is_cached_response_fresh(cachedresponse, request)
        )

    def is_cached_response_valid(
        self, cachedresponse: Response, response: Response, request: Request
    ) -> bool:
        return not self.is_challenge(cachedresponse, request) and (
            self.inner.is_cached_response_valid(cachedresponse, response, request)
        )

    # --- the verdict ----------------------------------------------------------------------------

    def is_challenge(self, response: Response, request: Request) -> bool:
        """Whether the detection calls ``response`` (decoded if compressed) a challenge."""
        if self._config is None or request.meta.get(TASK_KEY) is False:
            return False
        decoded = decode_body(response)
        if self._judge is not None:
            return self._judge(decoded, request)
        template = self._config.templates.for_url(request.url)
        override = request.meta.get(TASK_KEY)
        if isinstance(override, Mapping):
            # a bad meta is reported by the middleware; judge with the URL's template then
            with suppress(ValueError):
                template = template.merged(override)
        return find_challenge(decoded, template, self._config.detectors).challenge is not None


def decode_body(response: Response) -> Response:
    """``response`` with its body decoded as HttpCompression would (at most
    :data:`MAX_DECODED` bytes); unchanged when not compressed or not decodable."""
    encodings = [
        e.strip().lower()
        for e in b",".join(response.headers.getlist(b"Content-Encoding"))
        .decode("latin-1")
        .split(",")
        if e.strip() and e.strip().lower() != "identity"
    ]
    if not encodings:
        return response
    body = response.body
    try:
        for encoding in reversed(encodings):
            body = _decode(encoding, body)
    except (ValueError, OSError, zlib.error, _Undecodable):
        return response
    headers = response.headers.copy()
    headers.pop(b"Content-Encoding", None)
    cls = responsetypes.from_args(headers=headers, url=response.url, body=body)
    return response.replace(cls=cls, body=body, headers=headers)


class _Undecodable(Exception):
    """An encoding this environment cannot decode."""


def _decode(encoding: str, body: bytes) -> bytes:
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS).decompress(body, MAX_DECODED)
    if encoding == "deflate":
        try:
            return zlib.decompressobj().decompress(body, MAX_DECODED)
        except zlib.error:  # raw deflate, as some servers send it
            return zlib.decompressobj(wbits=-zlib.MAX_WBITS).decompress(body, MAX_DECODED)
    if encoding == "br":
        return _brotli(body)
    if encoding == "zstd":
        return _zstd(body)
    raise _Undecodable(encoding)


def _brotli(body: bytes) -> bytes:
    try:
        import brotli  # type: ignore[import-untyped,unused-ignore]  # noqa: PLC0415
    except ImportError:
        raise _Undecodable("br") from None
    decompressor: Any = brotli.Decompressor()
    try:
        return bytes(decompressor.process(body, output_buffer_limit=MAX_DECODED))
    except TypeError:  # brotli < 1.2 has no output limit
        return bytes(decompressor.process(body))[:MAX_DECODED]
    except brotli.error as exc:
        raise ValueError(str(exc)) from None


def _zstd(body: bytes) -> bytes:
    try:
        from compression import zstd  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415
    except ImportError:
        try:
            from backports import zstd  # type: ignore[import-not-found,no-redef,unused-ignore]  # noqa: PLC0415
        except ImportError:
            raise _Undecodable("zstd") from None
    try:
        return bytes(zstd.ZstdDecompressor().decompress(body, max_length=MAX_DECODED))
    except zstd.ZstdError as exc:
        raise ValueError(str(exc)) from None
