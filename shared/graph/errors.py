"""What to do about a failed Graph response, decided from status and `error.code` (walking inner errors).

Messages are localised and reworded over time; codes are the contract, so nothing here looks at a message.
Pure logic: no I/O, unit-tested without servers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from shared.streams import StreamSpec


class Action(StrEnum):
    RETRY = "retry"
    """Transient: same URL again after Retry-After or backoff."""
    REAUTH = "reauth"
    """The token was refused (expired, revoked): get a fresh one and retry once."""
    SKIP_PARENT = "skip_parent"
    """This parent has nothing to read (no mailbox, no OneDrive, scoped out by a policy, deleted meanwhile)."""
    FAIL_STREAM = "fail_stream"
    """Every partition of the stream will fail the same way (missing permission or licence): say so, once."""
    RESYNC = "resync"
    """A delta/sync token is gone: drop it and read everything again."""
    FAIL = "fail"
    """This partition failed for a reason retrying will not fix (bad request, unsupported query)."""


@dataclass(frozen=True, slots=True)
class GraphErrorBody:
    codes: tuple[str, ...]
    """Outermost first; empty codes dropped."""
    message: str
    request_id: str | None
    client_request_id: str | None


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    code: str
    """The code that decided (or `HTTP <status>` when Graph sent none)."""
    reason: str
    """Human-readable; names the permission or licence when that is the cause. Never contains a token."""


def parse_error_body(body: bytes | Mapping[str, Any] | None) -> GraphErrorBody:
    """Codes, message and ids from an OData error body; tolerant of non-JSON bodies (gateways send HTML)."""
    data: Any = body
    if isinstance(body, bytes | bytearray):
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
    codes: list[str] = []
    message = ""
    request_id = client_request_id = None
    node = data.get("error") if isinstance(data, Mapping) else None
    depth = 0
    while isinstance(node, Mapping) and depth < 10:
        code = node.get("code")
        if isinstance(code, str) and code:
            codes.append(code)
        if not message and isinstance(node.get("message"), str):
            message = node["message"]
        request_id = request_id or _str(node.get("request-id"))
        client_request_id = client_request_id or _str(node.get("client-request-id"))
        inner = next((node[k] for k in ("innerError", "innererror", "InnerError") if k in node), None)
        node = inner
        depth += 1
    return GraphErrorBody(tuple(codes), message[:500], request_id, client_request_id)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 509})
THROTTLE_STATUSES = frozenset({429, 503})

_RETRY_CODES = frozenset(c.lower() for c in (
    "activityLimitReached", "serviceNotAvailable", "TooManyRequests", "ApplicationThrottled",
    "ErrorServerBusy", "ErrorTooManyObjectsOpened", "UnknownError", "generalException", "timeout",
))
_RESYNC_CODES = frozenset(c.lower() for c in (
    "syncStateNotFound", "syncStateInvalid", "resyncRequired", "resyncChangesApplyDifferences",
    "resyncChangesUploadDifferences", "resyncApplyDifferences", "resyncUploadDifferences",
))
_NO_MAILBOX_CODES = frozenset(c.lower() for c in (
    "MailboxNotEnabledForRESTAPI", "MailboxNotSupportedForRESTAPI", "ResourceNotFound", "ErrorMailboxNotEnabled",
    "ErrorNonExistentMailbox", "ErrorInvalidUser", "ErrorItemNotFound",
))
_MAILBOX_POLICY_CODES = frozenset(c.lower() for c in ("ErrorAccessDenied", "extensionError"))
_NOT_FOUND_CODES = frozenset(c.lower() for c in (
    "Request_ResourceNotFound", "ResourceNotFound", "itemNotFound", "NotFound",
))
_PERMISSION_CODES = frozenset(c.lower() for c in (
    "Authorization_RequestDenied", "Forbidden", "accessDenied", "AccessDenied", "Authorization_IdentityNotFound",
    "ErrorAccessDenied", "forbidden",
))
_LICENCE_CODES = frozenset(c.lower() for c in (
    "Authentication_RequestFromNonPremiumTenantOrB2CTenant", "Authentication_RequestFromUnsupportedUserRole",
    "PaymentRequired", "paymentRequired", "LicenseNotFound", "Forbidden_LicenseNotFound",
))
_REAUTH_CODES = frozenset(c.lower() for c in (
    "InvalidAuthenticationToken", "ExpiredAuthenticationToken", "unauthenticated",
    "Authentication_ExpiredToken", "Authentication_MissingOrMalformed",
))


def _first(codes: Iterable[str], wanted: frozenset[str]) -> str | None:
    return next((c for c in codes if c.lower() in wanted), None)


def permission_hint(spec: StreamSpec) -> str:
    grants = " or ".join(spec.permissions)
    return f"grant the app the Microsoft Graph application permission {grants} (with admin consent)"


def classify(status: int, body: GraphErrorBody, spec: StreamSpec, *, parent_scoped: bool,
             granted_roles: frozenset[str] | None = None) -> Decision:
    """Decide what a failed response means for a partition of `spec`.

    `parent_scoped` is True when the request addressed one parent (a user's mailbox, a group's members): a 404 or
    a mailbox-level 403 then concerns that parent only, not the stream. `granted_roles` (the token's `roles`
    claim) separates the two meanings of Outlook's 403 ErrorAccessDenied: with none of the stream's permissions
    it is the app's missing permission (every mailbox fails), otherwise an access policy scoping one mailbox.
    """
    codes = body.codes
    top = codes[0] if codes else f"HTTP {status}"

    code = _first(codes, _RESYNC_CODES)
    if status == 410 or code:
        return Decision(Action.RESYNC, code or top, "the sync state expired; a full read is required")
    if status in RETRY_STATUSES:
        return Decision(Action.RETRY, top, f"transient HTTP {status}")
    code = _first(codes, _RETRY_CODES)
    if code and status >= 500:
        return Decision(Action.RETRY, code, f"transient HTTP {status}")
    if status == 401:
        code = _first(codes, _REAUTH_CODES) or top
        return Decision(Action.REAUTH, code, "Graph refused the access token")
    if status == 402 or _first(codes, _LICENCE_CODES):
        code = _first(codes, _LICENCE_CODES) or top
        return Decision(Action.FAIL_STREAM, code,
                        f"the tenant lacks the licence or billing {spec.name} needs ({code}); e.g. sign-in logs need "
                        "Microsoft Entra ID P1/P2, metered Teams APIs need a billing model")
    if spec.workload == "outlook" and parent_scoped:
        code = _first(codes, _NO_MAILBOX_CODES)
        if status == 404 and code:
            return Decision(Action.SKIP_PARENT, code, f"user has no Exchange Online mailbox ({code})")
        code = _first(codes, _MAILBOX_POLICY_CODES)
        lacks_permission = granted_roles is not None and not granted_roles.intersection(spec.permissions)
        if status == 403 and code and not lacks_permission:
            return Decision(Action.SKIP_PARENT, code,
                            f"mailbox is outside the app's Exchange application access policy ({code})")
    if spec.workload == "files" and parent_scoped and status == 404:
        return Decision(Action.SKIP_PARENT, top, f"OneDrive not provisioned or drive gone ({top})")
    if status == 404 and parent_scoped:
        return Decision(Action.SKIP_PARENT, top, f"parent no longer exists ({top})")
    if status == 403:
        code = _first(codes, _PERMISSION_CODES) or top
        return Decision(Action.FAIL_STREAM, code, f"permission missing for {spec.name}: {permission_hint(spec)}")
    return Decision(Action.FAIL, top, f"Graph answered HTTP {status} ({top}): {body.message}".rstrip(": "))
