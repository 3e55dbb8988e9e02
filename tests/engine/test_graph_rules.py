"""Pure Graph rules: error classification by code, Retry-After and backoff, the nextLink host allow-list."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.graph import (
    Action,
    OffHostLinkError,
    RetryPolicy,
    allowed_url,
    classify,
    parse_error_body,
    parse_retry_after,
)
from shared.streams import CATALOG

ROOT = "https://graph.microsoft.com/v1.0"


def body(code: str, *inner: str) -> bytes:
    node: dict[str, object] = {"code": code, "message": "whatever text"}
    top = node
    for c in inner:
        child: dict[str, object] = {"code": c}
        node["innerError"] = child
        node = child
    node.setdefault("innerError", {"request-id": "rid-1", "client-request-id": "cid-1"})
    import orjson

    return orjson.dumps({"error": top})


def decide(status: int, raw: bytes, stream: str, *, scoped: bool = True, roles: frozenset[str] | None = None):
    return classify(status, parse_error_body(raw), CATALOG[stream], parent_scoped=scoped, granted_roles=roles)


def test_parse_walks_inner_errors_and_ids() -> None:
    parsed = parse_error_body(body("Forbidden", "Authorization_RequestDenied"))
    assert parsed.codes == ("Forbidden", "Authorization_RequestDenied")
    assert parsed.request_id == "rid-1" and parsed.client_request_id == "cid-1"
    assert parse_error_body(b"<html>bad gateway</html>").codes == ()
    assert parse_error_body(b'{"error": {"code": "", "message": "m"}}').codes == ()


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_transient_statuses_retry(status: int) -> None:
    assert decide(status, body("whatever"), "users").action is Action.RETRY


def test_resync_family() -> None:
    assert decide(410, b"", "drive_items").action is Action.RESYNC
    assert decide(400, body("badRequest", "syncStateNotFound"), "mail_messages").action is Action.RESYNC
    assert decide(400, body("resyncRequired"), "drive_items").action is Action.RESYNC
    assert decide(400, body("resyncChangesApplyDifferences"), "drive_items").action is Action.RESYNC


def test_skip_parent_for_mailbox_and_onedrive_conditions() -> None:
    d = decide(404, body("MailboxNotEnabledForRESTAPI"), "mail_messages")
    assert d.action is Action.SKIP_PARENT and "mailbox" in d.reason and d.code == "MailboxNotEnabledForRESTAPI"
    assert decide(404, body("ResourceNotFound"), "calendar_events").action is Action.SKIP_PARENT
    assert decide(403, body("ErrorAccessDenied"), "contacts", roles=frozenset({"Contacts.Read"})).action \
        is Action.SKIP_PARENT
    assert decide(404, body("itemNotFound"), "drives").action is Action.SKIP_PARENT
    assert decide(404, body("Request_ResourceNotFound"), "group_member").action is Action.SKIP_PARENT


def test_outlook_access_denied_without_the_permission_fails_the_stream() -> None:
    d = decide(403, body("ErrorAccessDenied"), "mail_messages", roles=frozenset({"User.Read.All"}))
    assert d.action is Action.FAIL_STREAM
    assert "Mail.ReadBasic.All" in d.reason


def test_missing_permission_names_it() -> None:
    d = decide(403, body("Authorization_RequestDenied"), "audit_logs_directory", scoped=False)
    assert d.action is Action.FAIL_STREAM and d.code == "Authorization_RequestDenied"
    assert "AuditLog.Read.All" in d.reason
    d = decide(403, body("Forbidden", "Authorization_RequestDenied"), "group_member")
    assert d.action is Action.FAIL_STREAM and "GroupMember.Read.All" in d.reason


def test_licence_and_payment() -> None:
    d = decide(403, body("Authentication_RequestFromNonPremiumTenantOrB2CTenant"), "audit_logs_signins",
               scoped=False)
    assert d.action is Action.FAIL_STREAM and "P1/P2" in d.reason
    assert decide(402, body("PaymentRequired"), "chat_messages").action is Action.FAIL_STREAM


def test_classification_ignores_messages() -> None:
    a = parse_error_body(b'{"error": {"code": "Authorization_RequestDenied", "message": "Throttled! retry later"}}')
    b = parse_error_body(b'{"error": {"code": "Authorization_RequestDenied", "message": "x"}}')
    spec = CATALOG["users"]
    assert classify(403, a, spec, parent_scoped=False) == classify(403, b, spec, parent_scoped=False)


def test_unauthorized_reauths_and_other_4xx_fail_the_partition() -> None:
    assert decide(401, body("InvalidAuthenticationToken"), "users").action is Action.REAUTH
    d = decide(400, body("Request_UnsupportedQuery"), "users", scoped=False)
    assert d.action is Action.FAIL and d.code == "Request_UnsupportedQuery"
    assert decide(404, body("Request_ResourceNotFound"), "users", scoped=False).action is Action.FAIL


def test_retry_after_parsing() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("0.249") == pytest.approx(0.249)
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    now = datetime(2024, 1, 1, 0, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Mon, 01 Jan 2024 00:00:30 GMT", now) == 30.0
    assert parse_retry_after("-5") == 0.0


def test_backoff_honours_retry_after_and_is_capped_with_jitter() -> None:
    policy = RetryPolicy(max_attempts=6, base_delay=1.0, max_delay=8.0, max_retry_after=60)
    assert 3.5 <= policy.delay(1, 3.5) <= 3.5 * 1.2
    assert 60 <= policy.delay(1, 1000) <= 72
    assert policy.delay(3, 0.0) == 0.0
    rng = random.Random(1)
    for attempt in range(1, 10):
        ceiling = min(8.0, 2.0 ** (attempt - 1))
        d = policy.delay(attempt, None, rng)
        assert ceiling / 2 <= d <= ceiling
    assert policy.can_retry(5) and not policy.can_retry(6)


@pytest.mark.parametrize("link", [
    "https://graph.microsoft.com/v1.0/users?$skiptoken=abc%3D%3D",
    "https://GRAPH.microsoft.com:443/v1.0/users('x')/messages?%24skip=10",
    "https://graph.microsoft.com/v1.0/drives/b!x/root/delta?token=aa",
])
def test_links_under_the_root_are_allowed(link: str) -> None:
    url = allowed_url(link, ROOT)
    assert link.endswith(url.raw_path_qs)  # followed verbatim: path and query not re-encoded


@pytest.mark.parametrize(("link", "why"), [
    ("https://evil.example/v1.0/users?$skiptoken=1", "host"),
    ("http://graph.microsoft.com/v1.0/users", "scheme"),
    ("https://graph.microsoft.com:8443/v1.0/users", "port"),
    ("https://graph.microsoft.com/beta/users", "version root"),
    ("https://graph.microsoft.com/v1.0/../beta/users", "version root"),
    ("https://graph.microsoft.com/v1.0/%2e%2e/beta/users", "version root"),
    ("https://graph.microsoft.com@evil.example/v1.0/users", "host"),
    ("https://graph.microsoft.com.evil.example/v1.0/users", "host"),
    ("https://graph.microsoft.com/v1.0x/users", "version root"),
    ("/v1.0/users", "host"),
])
def test_off_root_links_are_refused(link: str, why: str) -> None:
    with pytest.raises(OffHostLinkError, match=why):
        allowed_url(link, ROOT)


@given(st.text(max_size=60))
def test_refusal_never_echoes_the_query(secret: str) -> None:
    link = "https://evil.example/v1.0/users?token=" + secret.replace("#", "")
    try:
        allowed_url(link, ROOT)
    except OffHostLinkError as exc:
        assert "token=" not in str(exc)
