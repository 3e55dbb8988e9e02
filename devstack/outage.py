"""The outage switch the Entra and Key Vault emulators both expose on their admin APIs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def outage_patch(data: Mapping[str, Any]) -> dict[str, Any]:
    """The validated subset of `unavailable` (bool), `status` (5xx) and `retry_after_seconds` (int or null) in a
    PUT body; ValueError names the field and the fix."""
    patch: dict[str, Any] = {}
    if "unavailable" in data:
        if not isinstance(data["unavailable"], bool):
            raise ValueError("unavailable: expected true or false")
        patch["unavailable"] = data["unavailable"]
    if "status" in data:
        if not isinstance(data["status"], int) or not 500 <= data["status"] <= 599:
            raise ValueError("status: expected a 5xx status code such as 503")
        patch["status"] = data["status"]
    if "retry_after_seconds" in data:
        value = data["retry_after_seconds"]
        if value is not None and (not isinstance(value, int) or value < 0):
            raise ValueError("retry_after_seconds: expected a non-negative integer or null")
        patch["retry_after_seconds"] = value
    return patch
