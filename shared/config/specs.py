"""The single list of app settings: the loader reads exactly these, infra tests compare Bicep against them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SettingSpec:
    name: str
    required: bool
    default: str | None
    description: str


SETTINGS: list[SettingSpec] = [
    SettingSpec("GRAPH_TENANT_IDS", True, None,
                "Tenant id(s) whose data is read, comma separated GUIDs (one run per tenant)."),
    SettingSpec("GRAPH_APP_TENANT_ID", False, None,
                "Tenant the app registration lives in (ISV / cross-tenant); default: the data tenant."),
    SettingSpec("GRAPH_CLIENT_ID", True, None,
                "Client id (GUID) of the Graph app registration; required unless GRAPH_CREDENTIAL_TYPE is "
                "managed_identity."),
    SettingSpec("GRAPH_CREDENTIAL_TYPE", False, "secret",
                "How the app proves itself to Entra: secret, certificate or managed_identity."),
    SettingSpec("KEY_VAULT_URL", True, None,
                "https URL of the Key Vault holding the Graph credential; required unless GRAPH_CREDENTIAL_TYPE is "
                "managed_identity."),
    SettingSpec("GRAPH_CLIENT_SECRET_NAME", False, "graph-client-secret",
                "Key Vault secret name holding the client secret."),
    SettingSpec("GRAPH_CERTIFICATE_SECRET_NAME", False, "graph-client-certificate",
                "Key Vault secret name holding the certificate: PEM (key + cert) or the base64 PFX a Key Vault "
                "certificate exposes as a secret."),
    SettingSpec("AZURE_CLIENT_ID", False, None,
                "Client id of the user-assigned managed identity used for Key Vault and Blob (and for Graph with "
                "managed_identity)."),
    SettingSpec("GRAPH_CLOUD", False, "global", "National cloud: global, usgov, usgovdod or china."),
    SettingSpec("GRAPH_AUTHORITY_HOST", False, None,
                "Override of the login authority host (private clouds, local stack), e.g. https://login.example."),
    SettingSpec("GRAPH_ENDPOINT", False, None,
                "Override of the Graph root (without /v1.0), e.g. https://graph.example; nextLinks must stay on it."),
    SettingSpec("CA_BUNDLE", False, None, "Path of a PEM CA bundle trusted for every HTTPS call (local stack)."),
    SettingSpec("OUTPUT_ACCOUNT_URL", True, None,
                "Blob / ADLS Gen2 account URL of the data lake, e.g. https://account.blob.core.windows.net."),
    SettingSpec("OUTPUT_CONTAINER", False, "m365", "Container the data lands in."),
    SettingSpec("OUTPUT_PREFIX", False, "graph", "Path prefix inside the container."),
    SettingSpec("OUTPUT_FORMAT", False, "jsonl.gz", "jsonl or jsonl.gz (gzip, compressed while streaming)."),
    SettingSpec("SYNC_STREAMS", False, "all", "Enabled streams, comma separated, or all."),
    SettingSpec("SYNC_STREAMS_CONFIG", False, None,
                'JSON object per stream: {"users": {"select": ["displayName"], "page_size": 500, '
                '"date_window": {"start": "2024-01-01T00:00:00Z", "end": null}}}.'),
    SettingSpec("SYNC_PAGE_SIZE", False, "999", "Default page size, 100-999 (clamped per endpoint maximum)."),
    SettingSpec("SYNC_SNAKE_CASE", False, "false", "true to write snake_case column names."),
    SettingSpec("SYNC_START_TIME", False, None, "Start of the date window for dated streams (ISO 8601, inclusive)."),
    SettingSpec("SYNC_END_TIME", False, None, "End of the date window for dated streams (ISO 8601, exclusive)."),
    SettingSpec("SYNC_USER_FILTER", False, None,
                "Graph $filter on users that scopes the per-user streams, e.g. department eq 'Sales'."),
    SettingSpec("SYNC_USER_GROUPS", False, None,
                "Group ids (comma separated) whose transitive user members scope the per-user streams."),
    SettingSpec("SYNC_SCHEDULE", False, "0 0 */6 * * *", "NCRONTAB schedule of the timer trigger (UTC)."),
    SettingSpec("GRAPH_MAX_ATTEMPTS", False, "6", "Attempts per Graph request on 429/5xx/network errors (1-20)."),
    SettingSpec("GRAPH_REQUEST_TIMEOUT_SECONDS", False, "120",
                "Seconds a Graph answer may stay silent before the request is retried (1-600)."),
    SettingSpec("GRAPH_MAX_PAGE_MB", False, "128",
                "Largest Graph answer accepted, in MiB after decompression (1-2048); a larger page fails its "
                "partition (not retried) instead of exhausting the worker's memory; 128 MiB is 999 records of "
                "~130 KiB each."),
    SettingSpec("KEY_VAULT_RETRY_BACKOFF_SECONDS", False, "0.8",
                "Backoff factor of the Key Vault client's retries (azure-core retry_backoff_factor, 0-60): waits "
                "grow as factor x 2^n seconds between attempts on 5xx/429/timeouts."),
    SettingSpec("GRAPH_GOVERNOR", False, "shared",
                "Pacing of the tenant-wide Graph budgets (directory resource units, audit/sign-in reports, "
                "conditional access): shared (every instance books from one Blob ledger per tenant and scope), "
                "local (each instance paces alone) or off (only Retry-After)."),
    SettingSpec("GRAPH_TENANT_SIZE", False, "S",
                "Graph's directory size tier of the tenant(s), which sets the resource-unit budget per 10 s: "
                "S (<50 users, 3,500), M (50-500, 5,000), L (>500, 8,000); S is safe for every tenant."),
    SettingSpec("GRAPH_BUDGET_SHARE", False, "0.9",
                "Part of each documented budget this app may use (0.01-1), leaving the rest to the tenant's "
                "other apps (conditional access is limited per tenant for all apps)."),
    SettingSpec("SYNC_PARTITION_RERUNS", False, "2",
                "Re-runs of a partition that failed with a transient error, after a durable timer (0-5)."),
    SettingSpec("SYNC_RERUN_DELAY_SECONDS", False, "60",
                "Wait before the first re-run of transiently failed partitions; doubles for each further one."),
]

SETTINGS_BY_NAME: dict[str, SettingSpec] = {s.name: s for s in SETTINGS}
