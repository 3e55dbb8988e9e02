"""Graph's error envelope and the errors the emulator answers with (codes and messages as Graph sends them)."""

from __future__ import annotations

from typing import Any

# Graph's standard message for a directory permission failure (json-batching.md sample).
INSUFFICIENT_PRIVILEGES = "Insufficient privileges to complete the operation."
OUTLOOK_ACCESS_DENIED = "Access is denied. Check credentials and try again."


class GraphError(Exception):
    """An error response; `inner_error=False` reproduces the Outlook errors that carry no innerError."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        inner_error: bool = True,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.inner_error = inner_error

    def body(self, *, request_id: str, client_request_id: str, date: str) -> dict[str, Any]:
        return error_body(self.code, self.message, request_id=request_id, client_request_id=client_request_id,
                          date=date, inner_error=self.inner_error)


def error_body(
    code: str, message: str, *, request_id: str, client_request_id: str, date: str, inner_error: bool = True
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if inner_error:
        error["innerError"] = {"date": date, "request-id": request_id, "client-request-id": client_request_id}
    return {"error": error}


def bad_request(message: str, code: str = "BadRequest") -> GraphError:
    return GraphError(400, code, message)


def unsupported_query(message: str) -> GraphError:
    return GraphError(400, "Request_UnsupportedQuery", message)


def directory_not_found(item_id: str) -> GraphError:
    return GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{item_id}' does not exist or one of its queried reference-property objects are not present.",
    )


def outlook_not_found() -> GraphError:
    return GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")


def outlook_invalid_user(user: str) -> GraphError:
    return GraphError(404, "ErrorInvalidUser", f"The requested user '{user}' is invalid.")


def mailbox_not_enabled() -> GraphError:
    return GraphError(
        404, "MailboxNotEnabledForRESTAPI", "The mailbox is either inactive, soft-deleted, or is hosted on-premise."
    )


def outlook_access_denied() -> GraphError:
    return GraphError(403, "ErrorAccessDenied", OUTLOOK_ACCESS_DENIED)


def authorization_denied() -> GraphError:
    return GraphError(403, "Authorization_RequestDenied", INSUFFICIENT_PRIVILEGES)


def no_route(method: str, path: str) -> GraphError:
    # Graph's answer for a path segment it cannot resolve.
    segment = path.rstrip("/").rsplit("/", 1)[-1] or path
    return GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")
