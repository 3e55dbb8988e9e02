"""Adds the non-directory collection kinds (Outlook, Teams, files, logs) to a tenant."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devstack.tenant.tenant import DemoTenant


def register_all(tenant: DemoTenant) -> None:
    return None
