"""National clouds: login authority, Graph root and token scope must switch together.

A token minted by one cloud is useless in another, and a Graph host from another cloud must never receive the
token, so the three values live in one row and are never mixed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CloudName = Literal["global", "usgov", "usgovdod", "china"]


@dataclass(frozen=True, slots=True)
class Cloud:
    name: CloudName
    authority_host: str
    graph_endpoint: str
    key_vault_suffix: str

    @property
    def graph_scope(self) -> str:
        """The `.default` scope is the cloud's Graph resource, even when the endpoint is overridden locally."""
        return f"{self.graph_endpoint}/.default"


CLOUDS: dict[str, Cloud] = {
    "global": Cloud("global", "https://login.microsoftonline.com", "https://graph.microsoft.com", ".vault.azure.net"),
    "usgov": Cloud("usgov", "https://login.microsoftonline.us", "https://graph.microsoft.us",
                   ".vault.usgovcloudapi.net"),
    "usgovdod": Cloud("usgovdod", "https://login.microsoftonline.us", "https://dod-graph.microsoft.us",
                      ".vault.usgovcloudapi.net"),
    "china": Cloud("china", "https://login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn",
                   ".vault.azure.cn"),
}

GRAPH_VERSION = "v1.0"
