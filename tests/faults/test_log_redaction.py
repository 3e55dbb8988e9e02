"""Log lines never carry an Authorization header, a token, a secret or a token-bearing query string."""

from __future__ import annotations

import logging

import pytest

from shared import logredact
from shared.logredact import RedactingFilter, redact

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL2dyYXBoIn0.c2lnbmF0dXJlLXBhcnQtb2YtdGhlLXRva2Vu"


@pytest.mark.parametrize("line, secret", [
    (f"headers={{'Authorization': 'Bearer {JWT}', 'Accept': 'application/json'}}", JWT),
    ("Authorization: Bearer abc.def-ghi_jkl", "abc.def-ghi_jkl"),
    ("x-functions-key: 0123456789abcdef0123", "0123456789abcdef0123"),
    (f"token is {JWT} (expired)", JWT),
    ("GET https://app.azurewebsites.net/api/syncs?code=Zm9vYmFyYmF6cXV4&x=1", "Zm9vYmFyYmF6cXV4"),
    ("PUT https://acct.blob.core.windows.net/c/b?sv=2024-01-01&sig=abc%2Bdef%3D&se=2030", "abc%2Bdef%3D"),
    ("nextLink https://graph.microsoft.com/v1.0/users/delta?$deltatoken=opaque123456", "opaque123456"),
    ("next https://graph.microsoft.com/v1.0/users?$top=5&$skiptoken=RFNwdAIAAQAAAD", "RFNwdAIAAQAAAD"),
    ('{"client_secret": "s3cr3t~value.here", "client_id": "abc"}', "s3cr3t~value.here"),
    ("data=client_secret=s3cr3t~value&grant_type=client_credentials", "s3cr3t~value"),
])
def test_redact_masks_the_value(line: str, secret: str) -> None:
    cleaned = redact(line)
    assert secret not in cleaned
    assert "REDACTED" in cleaned
    assert redact(cleaned) == cleaned


def test_redact_keeps_ordinary_lines() -> None:
    line = "partition done: stream=users records=12 path=/v1.0/users request-id=5d2c"
    assert redact(line) == line


def test_installed_factory_redacts_every_logger_and_handler(caplog: pytest.LogCaptureFixture) -> None:
    logredact.install()
    logredact.install()  # idempotent
    with caplog.at_level(logging.INFO):
        logging.getLogger("azure.core.pipeline.policies.http_logging_policy").info(
            "Request headers: %s", {"Authorization": f"Bearer {JWT}"})
        logging.getLogger("anything").warning("retrying %s", "https://x/api?code=topsecretkey1")
    text = caplog.text
    assert JWT not in text and "topsecretkey1" not in text
    assert text.count("REDACTED") >= 2


def test_filter_for_hand_made_handlers() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "auth %s", (f"Bearer {JWT}",), None)
    assert RedactingFilter().filter(record)
    assert JWT not in record.getMessage()
