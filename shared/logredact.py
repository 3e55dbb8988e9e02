"""Log redaction: no bearer token, JWT, client secret or token-bearing query string reaches a log sink.

Installed once per worker process (function_app.py) as a LogRecord factory rather than a handler filter, because
the Functions worker and Application Insights add their own handlers after the app is imported: a factory sees
every record of every logger (SDKs included) before any handler does.
"""

from __future__ import annotations

import logging
import re
from typing import Any

MASK = "REDACTED"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization / x-functions-key header values, as "Name: value", "'Name': 'value'" or "Name=value".
    (re.compile(r"(?i)(['\"]?\b(?:authorization|proxy-authorization|x-functions-key|ocp-apim-subscription-key)"
                r"['\"]?\s*[:=]\s*['\"]?)(?:bearer\s+|basic\s+)?[^\s'\",;}]+"), rf"\g<1>{MASK}"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9\-._~+/]+=*"), rf"\g<1> {MASK}"),
    (re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), MASK),
    # Query parameters that carry credentials or resumable cursors (function keys, SAS signatures, tokens).
    (re.compile(r"(?i)((?<![\w$-])(?:code|sig|signature|se|skoid|sktid|token|access_token|id_token|refresh_token|"
                r"client_secret|client_assertion|password|api[-_]?key|key|\$?skiptoken|\$?deltatoken)=)"
                r"[^&\s'\"#]+"), rf"\g<1>{MASK}"),
    # client_secret / password / access_token fields in JSON or Python reprs.
    (re.compile(r"(?i)(['\"](?:client_secret|password|access_token|refresh_token|secret|client_assertion)['\"]"
                r"\s*:\s*['\"])[^'\"]*"), rf"\g<1>{MASK}"),
)


def redact(text: str) -> str:
    """`text` with every credential-looking value masked (idempotent)."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """For handlers configured by hand (tests, tools); `install()` covers the whole process."""

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_record(record)
        return True


def _redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a broken format string is the caller's bug; leave the record as it is
        return
    cleaned = redact(message)
    if cleaned != message or record.args:
        record.msg, record.args = cleaned, None


_installed = False


def install() -> None:
    """Redact every log record this process creates from now on (idempotent)."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _redact_record(record)
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
