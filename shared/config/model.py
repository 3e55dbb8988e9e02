"""Typed, validated settings. Field aliases are the app-setting names so every error can name the setting."""

from __future__ import annotations

import os
import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from shared.config.clouds import CLOUDS, GRAPH_VERSION, Cloud, CloudName
from shared.streams import CATALOG

CredentialType = Literal["secret", "certificate", "managed_identity"]
OutputFormat = Literal["jsonl", "jsonl.gz"]
StreamName = Literal[
    "users", "applications", "service_principals", "groups", "group_member", "group_owner", "teams", "channels",
    "team_member", "chats", "chat_messages", "mail_messages", "calendar_events", "contacts", "drives",
    "drive_items", "audit_logs_directory", "audit_logs_signins", "conditional_access_policies", "directory_roles",
    "directory_role_templates", "directory_role_member",
]

_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)?$")
_CONTAINER = re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _parse_bool(value: Any) -> Any:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise ValueError(f"{value!r} is not a boolean; use true or false")
    return value


def _parse_time(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 time; use e.g. 2024-01-31T00:00:00Z") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return value


def _guid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError(f"{value!r} is not a GUID; copy the id (xxxxxxxx-xxxx-...) from the Entra portal") from None


def _https_url(value: str) -> str:
    stripped = value.strip().rstrip("/")
    if not re.match(r"^https://[^/\s]+(/\S*)?$", stripped):
        raise ValueError(f"{value!r} is not an https URL; use https://host[:port][/path]")
    return stripped


Csv = Annotated[tuple[str, ...], BeforeValidator(_split_csv)]
Bool = Annotated[bool, BeforeValidator(_parse_bool)]
Time = Annotated[datetime | None, BeforeValidator(_parse_time)]


class DateWindow(BaseModel):
    """Window of a dated stream: start inclusive, end exclusive, both optional."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    start: Time = None
    end: Time = None


class StreamOptions(BaseModel):
    """Per-stream part of SYNC_STREAMS_CONFIG."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    select: tuple[str, ...] | None = None
    page_size: int | None = Field(default=None, ge=100, le=999)
    date_window: DateWindow | None = None

    @field_validator("select")
    @classmethod
    def _select_names(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        bad = [name for name in value if not _FIELD_NAME.match(name)]
        if bad:
            raise ValueError(f"{bad} are not Graph property names; use camelCase names like displayName")
        if not value:
            raise ValueError("empty list; omit select to get the default columns")
        return value


def _parse_streams_config(value: Any) -> Any:
    if isinstance(value, str):
        try:
            parsed = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON ({exc}); it must be a JSON object keyed by stream name") from None
        if not isinstance(parsed, dict):
            raise ValueError("must be a JSON object keyed by stream name, e.g. {\"users\": {\"page_size\": 500}}")
        return parsed
    return value


class Settings(BaseModel):
    """Everything the engine needs, read once per worker from app settings."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=False)

    tenant_ids: Csv = Field(alias="GRAPH_TENANT_IDS", min_length=1)
    app_tenant_id: str | None = Field(default=None, alias="GRAPH_APP_TENANT_ID")
    client_id: str | None = Field(default=None, alias="GRAPH_CLIENT_ID")
    credential_type: CredentialType = Field(default="secret", alias="GRAPH_CREDENTIAL_TYPE")
    key_vault_url: str | None = Field(default=None, alias="KEY_VAULT_URL")
    client_secret_name: str = Field(default="graph-client-secret", alias="GRAPH_CLIENT_SECRET_NAME")
    certificate_secret_name: str = Field(default="graph-client-certificate", alias="GRAPH_CERTIFICATE_SECRET_NAME")
    azure_client_id: str | None = Field(default=None, alias="AZURE_CLIENT_ID")
    cloud_name: CloudName = Field(default="global", alias="GRAPH_CLOUD")
    authority_host_override: str | None = Field(default=None, alias="GRAPH_AUTHORITY_HOST")
    graph_endpoint_override: str | None = Field(default=None, alias="GRAPH_ENDPOINT")
    ca_bundle: str | None = Field(default=None, alias="CA_BUNDLE")
    output_account_url: str = Field(alias="OUTPUT_ACCOUNT_URL")
    output_container: str = Field(default="m365", alias="OUTPUT_CONTAINER")
    output_prefix: str = Field(default="graph", alias="OUTPUT_PREFIX")
    output_format: OutputFormat = Field(default="jsonl.gz", alias="OUTPUT_FORMAT")
    streams: Csv = Field(default=("all",), alias="SYNC_STREAMS", validate_default=True)
    streams_config: Annotated[dict[StreamName, StreamOptions], BeforeValidator(_parse_streams_config)] = Field(
        default_factory=dict, alias="SYNC_STREAMS_CONFIG")
    page_size: int = Field(default=999, ge=100, le=999, alias="SYNC_PAGE_SIZE")
    snake_case: Bool = Field(default=False, alias="SYNC_SNAKE_CASE")
    start_time: Time = Field(default=None, alias="SYNC_START_TIME")
    end_time: Time = Field(default=None, alias="SYNC_END_TIME")
    user_filter: str | None = Field(default=None, alias="SYNC_USER_FILTER")
    user_groups: Csv = Field(default=(), alias="SYNC_USER_GROUPS")
    schedule: str = Field(default="0 0 */6 * * *", alias="SYNC_SCHEDULE")
    max_attempts: int = Field(default=6, ge=1, le=20, alias="GRAPH_MAX_ATTEMPTS")
    request_timeout: float = Field(default=120.0, ge=1, le=600, alias="GRAPH_REQUEST_TIMEOUT_SECONDS")
    max_page_mb: int = Field(default=128, ge=1, le=2048, alias="GRAPH_MAX_PAGE_MB")
    key_vault_backoff: float = Field(default=0.8, ge=0, le=60, alias="KEY_VAULT_RETRY_BACKOFF_SECONDS")
    governor: Literal["shared", "local", "off"] = Field(default="shared", alias="GRAPH_GOVERNOR")
    tenant_size: Literal["S", "M", "L"] = Field(default="S", alias="GRAPH_TENANT_SIZE")
    budget_share: float = Field(default=0.9, ge=0.01, le=1, alias="GRAPH_BUDGET_SHARE")
    partition_reruns: int = Field(default=2, ge=0, le=5, alias="SYNC_PARTITION_RERUNS")
    rerun_delay: float = Field(default=60.0, ge=0, le=3600, alias="SYNC_RERUN_DELAY_SECONDS")

    @field_validator("tenant_ids", "user_groups")
    @classmethod
    def _guids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(_guid(v) for v in value))

    @field_validator("app_tenant_id", "client_id", "azure_client_id")
    @classmethod
    def _one_guid(cls, value: str | None) -> str | None:
        return None if value is None else _guid(value.strip())

    @field_validator("key_vault_url", "authority_host_override", "graph_endpoint_override", "output_account_url")
    @classmethod
    def _urls(cls, value: str | None) -> str | None:
        return None if value is None else _https_url(value)

    @field_validator("output_account_url")
    @classmethod
    def _blob_endpoint(cls, value: str) -> str:
        """ADLS Gen2 accounts answer the Blob API too; the portal often shows the dfs endpoint, so accept it."""
        return re.sub(r"\.dfs\.(core\.windows\.net|core\.usgovcloudapi\.net|core\.chinacloudapi\.cn)",
                      r".blob.\1", value)

    @field_validator("graph_endpoint_override")
    @classmethod
    def _no_version(cls, value: str | None) -> str | None:
        if value is not None and value.endswith("/" + GRAPH_VERSION):
            return value[: -len(GRAPH_VERSION) - 1]
        return value

    @field_validator("ca_bundle")
    @classmethod
    def _ca_exists(cls, value: str | None) -> str | None:
        if value is not None and not os.path.isfile(value):
            raise ValueError(f"file {value!r} does not exist; point it at a PEM CA bundle or remove the setting")
        return value

    @field_validator("output_container")
    @classmethod
    def _container(cls, value: str) -> str:
        if not _CONTAINER.match(value):
            raise ValueError(f"{value!r} is not a valid container name; use 3-63 lowercase letters, digits, hyphens")
        return value

    @field_validator("output_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        parts = [p for p in value.strip("/").split("/") if p]
        if any(p in (".", "..") for p in parts) or "\\" in value:
            raise ValueError(f"{value!r} must be a plain path like graph or raw/graph, without . or .. segments")
        return "/".join(parts)

    @field_validator("streams")
    @classmethod
    def _known_streams(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        names = tuple(v.lower() for v in value)
        if names == ("all",) or not names:
            return tuple(CATALOG)
        unknown = [n for n in names if n not in CATALOG]
        if unknown:
            raise ValueError(f"unknown stream(s) {', '.join(unknown)}; valid: all or {', '.join(CATALOG)}")
        return tuple(dict.fromkeys(names))

    @field_validator("schedule")
    @classmethod
    def _ncrontab(cls, value: str) -> str:
        if len(value.split()) != 6:
            raise ValueError(f"{value!r} is not a 6-field NCRONTAB expression; use e.g. 0 0 */6 * * *")
        return value

    # Derived values: computed here so no caller can mix a cloud's authority with another cloud's Graph root.

    @property
    def cloud(self) -> Cloud:
        return CLOUDS[self.cloud_name]

    @property
    def authority_host(self) -> str:
        return self.authority_host_override or self.cloud.authority_host

    @property
    def graph_endpoint(self) -> str:
        return self.graph_endpoint_override or self.cloud.graph_endpoint

    @property
    def graph_root(self) -> str:
        """Version root every request and every followed link must start with."""
        return f"{self.graph_endpoint}/{GRAPH_VERSION}"

    @property
    def graph_scope(self) -> str:
        return self.cloud.graph_scope

    @property
    def key_vault_override(self) -> bool:
        """A vault outside the cloud's DNS suffix (local stack): the SDK's challenge-resource check must be off."""
        if self.key_vault_url is None:
            return False
        from urllib.parse import urlsplit

        host = urlsplit(self.key_vault_url).hostname or ""
        return not host.endswith(self.cloud.key_vault_suffix)

    def app_tenant_for(self, data_tenant_id: str) -> str:
        return self.app_tenant_id or data_tenant_id

    def options_for(self, stream: str) -> StreamOptions:
        options: StreamOptions | None = self.streams_config.get(stream)  # type: ignore[call-overload]
        return options or StreamOptions()

    def page_size_for(self, stream: str) -> int | None:
        """The `$top` to send: configured size clamped to the endpoint maximum; None when the endpoint takes none."""
        spec = CATALOG[stream]
        if spec.max_page_size is None:
            return None
        configured = self.options_for(stream).page_size or self.page_size
        return min(configured, spec.max_page_size)

    def date_window_for(self, stream: str) -> tuple[datetime | None, datetime | None]:
        """Per-stream window when set, else the global one; (None, None) for undated streams."""
        if CATALOG[stream].date_column is None:
            return None, None
        window = self.options_for(stream).date_window
        if window is not None:
            return window.start, window.end
        return self.start_time, self.end_time
