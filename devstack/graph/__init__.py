"""Microsoft Graph v1.0 emulator: HTTP semantics (auth, permissions, paging, query options, delta, `$batch`,
throttling, faults) over the demo tenant's data. See `app.create_app`."""

from devstack.graph.app import create_app, service_of
from devstack.graph.settings import FaultSettings, GraphSettings, ThrottleSettings

__all__ = ["FaultSettings", "GraphSettings", "ThrottleSettings", "create_app", "service_of"]
