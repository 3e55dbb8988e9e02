"""The demo tenant: a deterministic, on-demand generated Microsoft 365 tenant with a mutation overlay.

`build_tenant(seed, sizes, state_dir)` returns an object implementing `model.Tenant`; see `model.py` for the
contract with the Graph emulator and `mutations.py` for the admin op vocabulary.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from devstack.tenant.layout import DEFAULT_ANCHOR
from devstack.tenant.model import Change, Collection, CollectionKind, Record, Tenant
from devstack.tenant.sizes import TenantSizes
from devstack.tenant.tenant import KINDS, DemoTenant


def build_tenant(seed: int, sizes: TenantSizes, state_dir: Path | None = None, *,
                 anchor: datetime = DEFAULT_ANCHOR) -> DemoTenant:
    """A tenant generated from `seed` + `sizes` (+ `anchor`, the "now" of the generated history).

    With `state_dir`, mutations are journaled there and replayed on the next build with the same inputs.
    """
    return DemoTenant(seed, sizes, state_dir, anchor)


__all__ = ["DEFAULT_ANCHOR", "KINDS", "Change", "Collection", "CollectionKind", "DemoTenant", "Record", "Tenant",
           "TenantSizes", "build_tenant"]
