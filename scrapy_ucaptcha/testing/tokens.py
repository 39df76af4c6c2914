"""Signed, expiring, single-use solution tokens shared by the simulator and the demo site.

The simulator signs every token it hands out with a secret; the demo site checks the signature, the
site key, the host the token was solved for and the expiry, and refuses a token it has seen before,
the way reCAPTCHA, hCaptcha and Turnstile verification endpoints do. Image captchas work the same
way: the demo site hides the answer, encrypted with the secret, inside the PNG it serves, and the
simulator reads it back to "solve" the image.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import struct
import zlib
from dataclasses import dataclass, field
from urllib.parse import urlsplit

__all__ = [
    "DEFAULT_SECRET",
    "DIRECT_EXIT",
    "IMAGE_ALPHABET",
    "TOKEN_PREFIXES",
    "InvalidToken",
    "TokenClaims",
    "TokenVerifier",
    "identity_string",
    "read_image_answer",
    "render_captcha_png",
    "sign_token",
]

#: The secret used when none is given: fine for loopback tests, never for anything public.
DEFAULT_SECRET = "ucaptcha-simulator-secret"  # noqa: S105  (a test double's well-known secret)

#: Tokens start like the real ones of each family, so that they look familiar in logs.
TOKEN_PREFIXES = {
    "recaptcha": "03AG",
    "hcaptcha": "P1_",
    "turnstile": "0.",
    "image": "",
    "generic": "tok_",
}

#: The identity of a request that came through no proxy, as :func:`identity_string` writes it.
DIRECT_EXIT = "direct"


def identity_string(exit_name: str, user_agent: str | None) -> str:
    """What a site binds a solution to: the exit the request came from and its User-Agent."""
    return f"{exit_name}|{user_agent or ''}"


_PNG_KEY = b"ucaptcha-answer"


class InvalidToken(ValueError):
    """A token was refused; ``reason`` is a short machine-readable word."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class TokenClaims:
    """What a token was issued for."""

    family: str
    sitekey: str
    host: str
    expires_at: float
    nonce: str
    action: str = ""
    #: The identity (exit and User-Agent) it was solved with; "" when solved without a proxy.
    identity: str = ""


def _mac(secret: str, data: bytes) -> str:
    digest = hmac.new(secret.encode(), data, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode().rstrip("=")


def _host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def sign_token(
    secret: str,
    *,
    family: str,
    sitekey: str,
    page_url: str,
    expires_at: float,
    action: str = "",
    identity: str = "",
) -> str:
    """Return a token for ``sitekey`` on the host of ``page_url``, valid until ``expires_at``,
    bound to ``identity`` (see :func:`identity_string`) when one is given."""
    claims = {
        "f": family,
        "s": sitekey.strip(),
        "h": _host_of(page_url),
        "e": round(expires_at, 3),
        "n": secrets.token_urlsafe(9),
        "a": action,
    }
    if identity:
        claims["i"] = identity
    payload = base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":")).encode())
    body = payload.decode().rstrip("=")
    prefix = TOKEN_PREFIXES.get(family, TOKEN_PREFIXES["generic"])
    return f"{prefix}{body}.{_mac(secret, body.encode())}"


def _decode(secret: str, token: str) -> TokenClaims:
    for prefix in sorted(set(TOKEN_PREFIXES.values()), key=len, reverse=True):
        if prefix and token.startswith(prefix):
            token = token[len(prefix) :]
            break
    body, _, mac = token.rpartition(".")
    if not body or not hmac.compare_digest(mac, _mac(secret, body.encode())):
        raise InvalidToken("bad-signature")
    try:
        raw = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        return TokenClaims(
            family=str(raw["f"]),
            sitekey=str(raw["s"]),
            host=str(raw["h"]),
            expires_at=float(raw["e"]),
            nonce=str(raw["n"]),
            action=str(raw.get("a", "")),
            identity=str(raw.get("i", "")),
        )
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise InvalidToken("malformed") from exc


@dataclass
class TokenVerifier:
    """Checks tokens as a site would: signature, sitekey, host, expiry, reuse."""

    secret: str = DEFAULT_SECRET
    _used: set[str] = field(default_factory=set, repr=False)

    def verify(
        self,
        token: str,
        *,
        sitekey: str,
        page_url: str,
        now: float,
        action: str | None = None,
        identity: str | None = None,
        single_use: bool = True,
    ) -> TokenClaims:
        """Return a good token's claims and mark it used; raise :class:`InvalidToken` otherwise.

        ``identity``: the identity of the request that brought the token (see
        :func:`identity_string`), for a site that binds tokens to it: a token solved through a
        proxy is good only from that same exit with that same User-Agent, and a request through
        a proxy takes only such tokens. ``single_use=False`` for clearance cookies, which are
        sent again with every request.
        """
        if not token:
            raise InvalidToken("missing")
        claims = _decode(self.secret, token)
        if claims.sitekey != sitekey.strip():
            raise InvalidToken("wrong-sitekey")
        if claims.host != _host_of(page_url):
            raise InvalidToken("wrong-host")
        if action is not None and claims.action != action:
            raise InvalidToken("wrong-action")
        if now > claims.expires_at:
            raise InvalidToken("expired")
        if identity is not None and not _same_identity(claims.identity, identity):
            raise InvalidToken("wrong-identity")
        if not single_use:
            return claims
        if claims.nonce in self._used:
            raise InvalidToken("reused")
        self._used.add(claims.nonce)
        return claims


def _same_identity(solved: str, seen: str) -> bool:
    if not solved:  # solved without a proxy: good only from a request without one
        return seen.partition("|")[0] == DIRECT_EXIT
    return hmac.compare_digest(solved.encode(), seen.encode())


# --- image captchas -------------------------------------------------------------------------------

# A 3x5 bitmap font: each glyph is five rows of three bits.
_GLYPHS = {
    "0": "111101101101111",
    "1": "010110010010111",
    "2": "111001111100111",
    "3": "111001111001111",
    "4": "101101111001001",
    "5": "111100111001111",
    "6": "111100111101111",
    "7": "111001010010010",
    "8": "111101111101111",
    "9": "111101111001111",
    "A": "010101111101101",
    "B": "110101110101110",
    "C": "011100100100011",
    "D": "110101101101110",
    "E": "111100110100111",
    "F": "111100110100100",
    "H": "101101111101101",
    "K": "101101110101101",
    "M": "101111111101101",
    "N": "110101101101101",
    "P": "110101110100100",
    "R": "110101110101101",
    "T": "111010010010010",
    "W": "101101111111101",
    "X": "101101010101101",
    "Y": "101101010010010",
}
#: Characters an image answer may use.
IMAGE_ALPHABET = "".join(sorted(_GLYPHS))
_SCALE = 4


def _keystream(secret: str, nonce: bytes, length: int) -> bytes:
    out = b""
    counter = 0
    while len(out) < length:
        out += hmac.new(
            secret.encode(), nonce + struct.pack(">I", counter), hashlib.sha256
        ).digest()
        counter += 1
    return out[:length]


_TAG_BYTES = 8


def _seal_tag(secret: str, data: bytes) -> bytes:
    """Authenticates the sealed answer, so that a PNG made with another secret reads as None."""
    return hmac.new(secret.encode(), b"png-answer" + data, hashlib.sha256).digest()[:_TAG_BYTES]


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def render_captcha_png(secret: str, answer: str) -> bytes:
    """Draw ``answer`` (characters of :data:`IMAGE_ALPHABET`) as a greyscale PNG.

    The answer is also stored, encrypted with ``secret``, in a ``tEXt`` chunk, so the simulator can
    read it back; anyone without the secret sees only the picture.
    """
    answer = answer.upper()
    if not answer or any(ch not in _GLYPHS for ch in answer):
        raise ValueError(f"image answers use only {IMAGE_ALPHABET!r}")
    cols = len(answer) * 4 + 1
    rows = 7
    width, height = cols * _SCALE, rows * _SCALE
    pixels = [[235] * width for _ in range(height)]
    for index, ch in enumerate(answer):
        glyph = _GLYPHS[ch]
        for gy in range(5):
            for gx in range(3):
                if glyph[gy * 3 + gx] == "1":
                    x0, y0 = (1 + index * 4 + gx) * _SCALE, (1 + gy) * _SCALE
                    for y in range(y0, y0 + _SCALE):
                        for x in range(x0, x0 + _SCALE):
                            pixels[y][x] = 30
    raw = b"".join(b"\x00" + bytes(row) for row in pixels)
    nonce = secrets.token_bytes(8)
    sealed = bytes(
        a ^ b for a, b in zip(answer.encode(), _keystream(secret, nonce, len(answer)), strict=True)
    )
    tag = _seal_tag(secret, nonce + sealed)
    text = _PNG_KEY + b"\x00" + base64.b64encode(nonce + sealed + tag)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"tEXt", text)
        + _png_chunk(b"IDAT", zlib.compress(raw, 9))
        + _png_chunk(b"IEND", b"")
    )


def read_image_answer(secret: str, png: bytes) -> str | None:
    """Return the answer hidden in a PNG made by :func:`render_captcha_png`, or ``None``."""
    if not png.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    pos = 8
    while pos + 8 <= len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind = png[pos + 4 : pos + 8]
        data = png[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind != b"tEXt" or not data.startswith(_PNG_KEY + b"\x00"):
            continue
        try:
            blob = base64.b64decode(data[len(_PNG_KEY) + 1 :], validate=True)
        except binascii.Error:
            return None
        # Without the tag, another secret's PNG decrypts to random bytes that are often ASCII,
        # and would be "solved" with a garbage answer.
        nonce, sealed, tag = blob[:8], blob[8:-_TAG_BYTES], blob[-_TAG_BYTES:]
        if not sealed or not hmac.compare_digest(tag, _seal_tag(secret, nonce + sealed)):
            return None
        plain = bytes(
            a ^ b for a, b in zip(sealed, _keystream(secret, nonce, len(sealed)), strict=True)
        )
        answer = plain.decode("ascii", "replace")
        return answer if all(ch in _GLYPHS for ch in answer) else None
    return None
