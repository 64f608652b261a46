"""``X-Twilio-Signature``: HMAC-SHA1 over the full URL and the sorted POST parameters, base64-encoded."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit


def compute_signature(auth_token: str, url: str, params: Mapping[str, str] | None = None) -> str:
    """The signature Twilio sends for a request to ``url`` with form ``params`` (none for GET/WebSocket)."""
    params = params or {}
    data = url + "".join(f"{key}{params[key]}" for key in sorted(params))
    digest = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def is_valid_signature(auth_token: str, url: str, params: Mapping[str, str] | None, signature: str | None) -> bool:
    """Check a request's signature. Twilio may sign the URL with or without the default port, so accept both."""
    if not signature:
        return False
    return any(
        hmac.compare_digest(compute_signature(auth_token, candidate, params), signature)
        for candidate in _port_variants(url)
    )


def _port_variants(url: str) -> list[str]:
    parts = urlsplit(url)
    default_port = {"https": 443, "wss": 443, "http": 80, "ws": 80}.get(parts.scheme)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    userinfo = parts.netloc.rpartition("@")[0]
    prefix = f"{userinfo}@" if userinfo else ""
    without_port = urlunsplit(parts._replace(netloc=prefix + host))
    port = parts.port or default_port
    with_port = urlunsplit(parts._replace(netloc=f"{prefix}{host}:{port}")) if port else without_port
    return list(dict.fromkeys([url, without_port, with_port]))
