"""Microsoft Graph v1.0 emulator: Graph's HTTP semantics (auth, permissions, paging, query options, delta,
`$batch`, throttling, faults) over the demo tenant's data.

    app = create_app(tenant=tenant, verifier=TokenVerifier(keys, tenants=[tid]), settings=GraphSettings(...))

Module map: `endpoints` (declarative endpoint table + routing), `permissions` (roles per endpoint),
`odata_filter`/`query` (query options), `paging`, `cursors` (signed tokens, epochs), `delta`/`delta_handler`,
`throttle` (pure limits model), `faults`, `batch`, `service` (request pipeline), `app` (HTTP + admin API).

Admin API (loopback only, JSON, no Graph auth), under `/_admin`:
- `GET /health`; `GET|PATCH /settings` (`{"throttle": {...}, "faults": {...}, "directory_delta_page_size": n,
  "delta_token_ttl_seconds": s, "public_base_url": url}`);
- `POST /tenant` one op or `{"ops": [...]}` (forwarded to `Tenant.apply`, see devstack.tenant.mutations);
- `POST /delta/expire` `{}` (all tokens) or `{"kind": K, "parent_ids": [...]}` (one partition);
- `GET /counters`, `POST /counters/reset`, `POST /throttle/reset`.
"""

from devstack.graph.app import create_app, service_of
from devstack.graph.settings import FaultSettings, GraphSettings, ThrottleSettings

__all__ = ["FaultSettings", "GraphSettings", "ThrottleSettings", "create_app", "service_of"]
