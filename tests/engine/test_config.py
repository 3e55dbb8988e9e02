"""Settings: every error named with its setting and fix, all at once; clouds switch together; overrides."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.config import SETTINGS, ConfigError, load_settings, with_overrides
from shared.streams import CATALOG

TENANT = "11111111-1111-1111-1111-111111111111"
CLIENT = "22222222-2222-2222-2222-222222222222"

BASE = {
    "GRAPH_TENANT_IDS": TENANT,
    "GRAPH_CLIENT_ID": CLIENT,
    "KEY_VAULT_URL": "https://kv-x.vault.azure.net/",
    "OUTPUT_ACCOUNT_URL": "https://lake.blob.core.windows.net",
}


def problems(env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    return info.value.problems


def test_minimal_settings_use_documented_defaults() -> None:
    s = load_settings(BASE)
    assert s.tenant_ids == (TENANT,)
    assert s.credential_type == "secret"
    assert s.output_container == "m365" and s.output_prefix == "graph" and s.output_format == "jsonl.gz"
    assert s.streams == tuple(CATALOG) and len(s.streams) == 22
    assert s.page_size == 999 and s.max_attempts == 6 and s.snake_case is False
    assert s.graph_root == "https://graph.microsoft.com/v1.0"
    assert s.authority_host == "https://login.microsoftonline.com"
    assert s.graph_scope == "https://graph.microsoft.com/.default"
    assert s.key_vault_override is False
    assert s.key_vault_url == "https://kv-x.vault.azure.net"


def test_settings_spec_defaults_match_the_model() -> None:
    """Setting a spec's documented default explicitly changes nothing: the list and the model agree."""
    implicit = load_settings(BASE)
    by_alias = implicit.model_dump(by_alias=True)
    for spec in SETTINGS:
        assert spec.name in by_alias, spec.name
        assert spec.description
        if spec.default is not None:
            explicit = load_settings({**BASE, spec.name: spec.default}).model_dump(by_alias=True)
            assert explicit[spec.name] == by_alias[spec.name], spec.name


@pytest.mark.parametrize(
    ("cloud", "authority", "graph"),
    [
        ("global", "https://login.microsoftonline.com", "https://graph.microsoft.com"),
        ("usgov", "https://login.microsoftonline.us", "https://graph.microsoft.us"),
        ("usgovdod", "https://login.microsoftonline.us", "https://dod-graph.microsoft.us"),
        ("china", "https://login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn"),
    ],
)
def test_national_clouds_switch_authority_root_and_scope_together(cloud: str, authority: str, graph: str) -> None:
    s = load_settings({**BASE, "GRAPH_CLOUD": cloud})
    assert s.authority_host == authority
    assert s.graph_root == f"{graph}/v1.0"
    assert s.graph_scope == f"{graph}/.default"


def test_local_overrides_change_hosts_but_not_the_token_scope(tmp_path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    s = load_settings({**BASE, "GRAPH_AUTHORITY_HOST": "https://127.0.0.1:8443/", "GRAPH_ENDPOINT":
                       "https://127.0.0.1:9443/v1.0", "KEY_VAULT_URL": "https://127.0.0.1:7443",
                       "CA_BUNDLE": str(ca)})
    assert s.authority_host == "https://127.0.0.1:8443"
    assert s.graph_root == "https://127.0.0.1:9443/v1.0"
    assert s.graph_scope == "https://graph.microsoft.com/.default"
    assert s.key_vault_override is True


def test_every_problem_is_reported_at_once_naming_setting_and_fix() -> None:
    found = problems({
        "GRAPH_TENANT_IDS": "not-a-guid",
        "GRAPH_CREDENTIAL_TYPE": "password",
        "GRAPH_CLOUD": "mars",
        "CA_BUNDLE": "/nonexistent/ca.pem",
        "OUTPUT_FORMAT": "parquet",
        "OUTPUT_CONTAINER": "Bad_Container",
        "OUTPUT_PREFIX": "../escape",
        "SYNC_STREAMS": "users,emails",
        "SYNC_PAGE_SIZE": "5000",
        "SYNC_SNAKE_CASE": "perhaps",
        "SYNC_START_TIME": "yesterday",
        "SYNC_USER_GROUPS": "g1",
        "SYNC_SCHEDULE": "every hour",
        "GRAPH_MAX_ATTEMPTS": "0",
        "OUTPUT_ACCOUNT_URL": "http://insecure.example",
        "GRAPH_ENDPOINT": "graph.example",
    })
    joined = "\n".join(found)
    for name in ("GRAPH_TENANT_IDS", "GRAPH_CREDENTIAL_TYPE", "GRAPH_CLOUD", "CA_BUNDLE", "OUTPUT_FORMAT",
                 "OUTPUT_CONTAINER", "OUTPUT_PREFIX", "SYNC_STREAMS", "SYNC_PAGE_SIZE", "SYNC_SNAKE_CASE",
                 "SYNC_START_TIME", "SYNC_USER_GROUPS", "SYNC_SCHEDULE", "GRAPH_MAX_ATTEMPTS", "OUTPUT_ACCOUNT_URL",
                 "GRAPH_ENDPOINT", "GRAPH_CLIENT_ID", "KEY_VAULT_URL"):
        assert any(p.startswith(name) for p in found), f"{name} missing from:\n{joined}"
    assert "emails" in joined and "valid" in joined
    assert "100" in joined and "999" in joined


def test_error_text_is_readable_without_a_stack_trace() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({})
    text = str(info.value)
    assert text.startswith(f"{len(info.value.problems)} configuration problem(s):")
    assert "GRAPH_TENANT_IDS is not set" in text and "OUTPUT_ACCOUNT_URL is not set" in text
    assert "Traceback" not in text and "pydantic" not in text.lower()


def test_client_id_and_vault_required_for_secret_but_not_for_managed_identity() -> None:
    env = {k: v for k, v in BASE.items() if k not in ("GRAPH_CLIENT_ID", "KEY_VAULT_URL")}
    found = problems(env)
    assert any(p.startswith("GRAPH_CLIENT_ID is not set") for p in found)
    assert any(p.startswith("KEY_VAULT_URL is not set") for p in found)
    s = load_settings({**env, "GRAPH_CREDENTIAL_TYPE": "managed_identity"})
    assert s.credential_type == "managed_identity" and s.client_id is None


def test_managed_identity_is_single_tenant() -> None:
    other = "33333333-3333-3333-3333-333333333333"
    found = problems({**BASE, "GRAPH_CREDENTIAL_TYPE": "managed_identity", "GRAPH_TENANT_IDS": f"{TENANT},{other}"})
    assert any("managed identity can only read its own tenant" in p for p in found)
    found = problems({**BASE, "GRAPH_CREDENTIAL_TYPE": "managed_identity", "GRAPH_APP_TENANT_ID": other})
    assert any(p.startswith("GRAPH_TENANT_IDS") for p in found)


def test_empty_values_count_as_unset() -> None:
    s = load_settings({**BASE, "SYNC_USER_FILTER": "", "CA_BUNDLE": "  ", "GRAPH_CLOUD": ""})
    assert s.user_filter is None and s.ca_bundle is None and s.cloud_name == "global"


def test_time_window_must_be_ordered() -> None:
    found = problems({**BASE, "SYNC_START_TIME": "2024-02-01T00:00:00Z", "SYNC_END_TIME": "2024-01-01"})
    assert any(p.startswith("SYNC_START_TIME/SYNC_END_TIME") and "swap" in p for p in found)


def test_streams_config_errors_name_the_stream_and_key() -> None:
    found = problems({**BASE, "SYNC_STREAMS_CONFIG": (
        '{"userz": {}, "users": {"page_size": 50, "colour": 1, "date_window": {"start": "2024-01-01"}},'
        ' "mail_messages": {"select": ["sub ject"], "date_window": {"start": "2024-03-01", "end": "2024-02-01"}}}')})
    joined = "\n".join(found)
    assert "SYNC_STREAMS_CONFIG.userz: unknown stream name" in joined
    assert "SYNC_STREAMS_CONFIG.users.page_size" in joined
    assert "SYNC_STREAMS_CONFIG.users.colour" in joined
    assert "SYNC_STREAMS_CONFIG.mail_messages.select" in joined


def test_streams_config_cross_checks_after_parsing() -> None:
    found = problems({**BASE, "SYNC_STREAMS_CONFIG": (
        '{"users": {"date_window": {"start": "2024-01-01"}},'
        ' "mail_messages": {"date_window": {"start": "2024-03-01", "end": "2024-02-01"}}}')})
    joined = "\n".join(found)
    assert "SYNC_STREAMS_CONFIG.users.date_window: users has no date column" in joined
    assert "SYNC_STREAMS_CONFIG.mail_messages.date_window: start" in joined


def test_streams_config_must_be_a_json_object() -> None:
    assert any("not valid JSON" in p for p in problems({**BASE, "SYNC_STREAMS_CONFIG": "{users:"}))
    assert any("JSON object" in p for p in problems({**BASE, "SYNC_STREAMS_CONFIG": "[1]"}))


def test_page_size_is_clamped_per_endpoint_and_absent_where_unsupported() -> None:
    s = load_settings({**BASE, "SYNC_PAGE_SIZE": "500", "SYNC_STREAMS_CONFIG": '{"users": {"page_size": 999}}'})
    assert s.page_size_for("users") == 999
    assert s.page_size_for("groups") == 500
    assert s.page_size_for("chats") == 50
    assert s.page_size_for("chat_messages") == 50
    assert s.page_size_for("channels") is None
    assert s.page_size_for("directory_roles") is None


def test_date_window_per_stream_overrides_the_global_one() -> None:
    s = load_settings({**BASE, "SYNC_START_TIME": "2024-01-01T00:00:00+02:00",
                       "SYNC_STREAMS_CONFIG": '{"audit_logs_signins": {"date_window": {"start": "2024-06-01"}}}'})
    assert s.date_window_for("mail_messages") == (datetime(2023, 12, 31, 22, tzinfo=UTC), None)
    assert s.date_window_for("audit_logs_signins") == (datetime(2024, 6, 1, tzinfo=UTC), None)
    assert s.date_window_for("users") == (None, None)


def test_streams_list_and_all() -> None:
    assert load_settings({**BASE, "SYNC_STREAMS": "Users, groups,users"}).streams == ("users", "groups")
    assert load_settings({**BASE, "SYNC_STREAMS": "all"}).streams == tuple(CATALOG)


def test_run_overrides_are_validated_like_settings() -> None:
    s = load_settings(BASE)
    updated = with_overrides(s, {"streams": ["users"], "start_time": "2024-01-01T00:00:00Z",
                                 "user_filter": "department eq 'Sales'", "full": True})
    assert updated.streams == ("users",) and updated.user_filter == "department eq 'Sales'"
    assert updated.start_time == datetime(2024, 1, 1, tzinfo=UTC)
    assert with_overrides(s, {}) is s
    with pytest.raises(ConfigError) as info:
        with_overrides(s, {"streams": ["nope"], "end_time": "soon"})
    assert len(info.value.problems) == 2


def test_adls_dfs_endpoint_is_read_as_its_blob_endpoint() -> None:
    s = load_settings({**BASE, "OUTPUT_ACCOUNT_URL": "https://lake.dfs.core.windows.net/"})
    assert s.output_account_url == "https://lake.blob.core.windows.net"
