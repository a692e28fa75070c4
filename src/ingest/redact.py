"""One redaction for every message a person or a log sees: passwords inside URLs, ``password=``-like pairs, and
the secret values of the settings themselves (registered when the settings are loaded)."""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.-]*://)(?P<user>[^\s:/@]*):[^\s/@]*@", re.IGNORECASE)
_PAIR = re.compile(r"(?P<key>\b(?:password|passwd|api_key|apikey|token|secret)\b['\"]?\s*[=:]\s*['\"]?)[^\s&'\",)]+",
                   re.IGNORECASE)
_SECRETS: set[str] = set()


def register_secret(value: str | None) -> None:
    """Hide ``value`` from every later :func:`redact` (values shorter than 4 characters are not worth it)."""
    if value and len(value) >= 4:
        _SECRETS.add(value)


def redact(text: str) -> str:
    """``text`` with secrets replaced by ``***``; what is not secret (user, host, port) stays readable."""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    text = _PAIR.sub(lambda m: f"{m['key']}***", text)
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
