"""Entra's OAuth error body (AADSTS): what MSAL and azure-identity parse and surface to the operator."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any


@dataclass
class AadError(Exception):
    """One token-endpoint failure: HTTP status, OAuth `error`, AADSTS number and its message."""

    status: int
    error: str
    code: int
    message: str

    def __post_init__(self) -> None:
        super().__init__(f"AADSTS{self.code}: {self.message}")

    def body(self, *, trace_id: str | None = None, correlation_id: str | None = None) -> dict[str, Any]:
        trace = trace_id or str(uuid.uuid4())
        correlation = correlation_id or str(uuid.uuid4())
        now = dt.datetime.now(dt.UTC)
        stamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
        description = (
            f"AADSTS{self.code}: {self.message}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\n"
            f"Timestamp: {stamp}"
        )
        return {
            "error": self.error,
            "error_description": description,
            "error_codes": [self.code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"https://login.microsoftonline.com/error?code={self.code}",
        }


def transient() -> AadError:
    return AadError(503, "temporarily_unavailable", 90033, "A transient error has occurred. Please try again.")


def missing_parameter(name: str) -> AadError:
    return AadError(400, "invalid_request", 900144, f"The request body must contain the following parameter: '{name}'.")


def unsupported_grant(grant: str) -> AadError:
    return AadError(400, "unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{grant}'.")


def tenant_not_found(name: str) -> AadError:
    return AadError(
        400,
        "invalid_request",
        90002,
        f"Tenant '{name}' not found. Check to make sure you have the correct tenant ID and are signing into the "
        "correct cloud. Check with your subscription administrator, this may happen if there are no active "
        "subscriptions for the tenant.",
    )


def app_not_found(client_id: str, tenant_name: str) -> AadError:
    return AadError(
        400,
        "unauthorized_client",
        700016,
        f"Application with identifier '{client_id}' was not found in the directory '{tenant_name}'. This can happen "
        "if the application has not been installed by the administrator of the tenant or consented to by any user "
        "in the tenant. You may have sent your authentication request to the wrong tenant.",
    )


def app_disabled(client_id: str, name: str) -> AadError:
    return AadError(400, "unauthorized_client", 7000112, f"Application '{client_id}'({name}) is disabled.")


def no_credential() -> AadError:
    return AadError(
        401, "invalid_client", 7000218,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    )


def bad_secret(client_id: str) -> AadError:
    return AadError(
        401,
        "invalid_client",
        7000215,
        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, "
        f"not the client secret ID, for a secret added to app '{client_id}'.",
    )


def expired_secret(client_id: str) -> AadError:
    return AadError(
        401, "invalid_client", 7000222, f"The provided client secret keys for app '{client_id}' are expired."
    )


def bad_assertion_type(value: str) -> AadError:
    return AadError(
        400, "invalid_request", 700010,
        f"Invalid client_assertion_type '{value}'. Expected 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'.",
    )


def malformed_assertion() -> AadError:
    return AadError(400, "invalid_request", 50027, "JWT token is invalid or malformed.")


def unknown_certificate(client_id: str, thumbprint: str) -> AadError:
    return AadError(
        401,
        "invalid_client",
        700027,
        "The certificate with identifier used to sign the client assertion is not registered on application. "
        f"[Reason - The key was not found., Thumbprint of key used by client: '{thumbprint}', "
        f"Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app "
        f"Id '{client_id}'.]",
    )


def bad_assertion_signature() -> AadError:
    return AadError(401, "invalid_client", 700027, "Client assertion failed signature validation.")


def assertion_audience() -> AadError:
    return AadError(
        401, "invalid_client", 700023,
        "Client assertion audience claim does not match Realm issuer. Review the documentation at "
        "https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
    )


def assertion_subject() -> AadError:
    return AadError(
        401, "invalid_client", 700021,
        "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at "
        "https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
    )


def assertion_time(now: int, nbf: Any, exp: Any) -> AadError:
    return AadError(
        401, "invalid_client", 700024,
        f"Client assertion is not within its valid time range. Current time: {_iso(now)}, assertion valid from "
        f"{_iso(nbf)}, expiry time of assertion {_iso(exp)}. Review the documentation at "
        "https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
    )


def scope_not_default(scope: str) -> AadError:
    return AadError(
        400, "invalid_scope", 1002012,
        f"The provided value for scope {scope} is not valid. Client credential flows must have a scope value with "
        "/.default suffixed to the resource identifier (application ID URI).",
    )


def scope_invalid(scope: str) -> AadError:
    return AadError(
        400, "invalid_scope", 70011,
        f"The provided request must include a 'scope' input parameter. The provided value for the input parameter "
        f"'scope' is not valid. The scope {scope} is not valid.",
    )


def resource_not_found(resource: str, tenant_name: str) -> AadError:
    return AadError(
        400, "invalid_resource", 500011,
        f"The resource principal named {resource} was not found in the tenant named {tenant_name}. This can happen "
        "if the application has not been installed by the administrator of the tenant or consented to by any user "
        "in the tenant. You might have sent your authentication request to the wrong tenant.",
    )


def _iso(value: Any) -> str:
    if not isinstance(value, int | float):
        return "(missing)"
    return dt.datetime.fromtimestamp(value, dt.UTC).strftime("%m/%d/%Y %H:%M:%S")
