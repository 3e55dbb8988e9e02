"""The stream catalog: all 22 streams, app-only paths, parents and keys consistent."""

from __future__ import annotations

import pytest

from shared.streams import CATALOG, STREAMS, get_stream, parent_chain

EXPECTED = [
    "users", "applications", "service_principals", "groups", "group_member", "group_owner", "teams", "channels",
    "team_member", "chats", "chat_messages", "mail_messages", "calendar_events", "contacts", "drives", "drive_items",
    "audit_logs_directory", "audit_logs_signins", "conditional_access_policies", "directory_roles",
    "directory_role_templates", "directory_role_member",
]


def test_all_22_streams_in_order() -> None:
    assert list(CATALOG) == EXPECTED
    assert len(STREAMS) == 22


@pytest.mark.parametrize("spec", STREAMS, ids=lambda s: s.name)
def test_entry_is_consistent(spec) -> None:
    assert spec.path.startswith("/") and "/me/" not in spec.path
    assert spec.permissions and all("." in p for p in spec.permissions)
    assert spec.primary_key[-1] == "id"
    if spec.parent is None:
        assert "{parent}" not in spec.path and spec.parent_key is None
    else:
        assert spec.parent in CATALOG and "{parent}" in spec.path and spec.parent_key
        if spec.fan_out:
            assert spec.primary_key == (spec.parent_key, "id")
    if spec.max_page_size is not None:
        assert 1 <= spec.max_page_size <= 1000


def test_app_only_paths_and_peer_defects_fixed() -> None:
    chats = CATALOG["chats"]
    assert chats.path == "/users/{parent}/chats" and chats.fan_out is False and chats.partition_parent is None
    assert CATALOG["chat_messages"].partition_parent == "chats"
    assert CATALOG["drive_items"].path == "/drives/{parent}/root/delta"
    assert CATALOG["drive_items"].partition_parent == "drives"
    assert CATALOG["channels"].partition_parent == "teams" and CATALOG["team_member"].partition_parent == "teams"
    assert {s.parent_key for s in STREAMS if s.parent_key} == {"user_id", "group_id", "team_id", "chat_id",
                                                                "role_id", "drive_id"}


def test_dated_streams() -> None:
    dated = {s.name: s.date_column for s in STREAMS if s.date_column}
    assert dated == {"chat_messages": "lastModifiedDateTime", "mail_messages": "receivedDateTime",
                     "calendar_events": "createdDateTime", "audit_logs_directory": "activityDateTime",
                     "audit_logs_signins": "createdDateTime"}
    assert CATALOG["chat_messages"].date_orderby == "lastModifiedDateTime desc"


def test_path_for_encodes_ids_so_they_cannot_reshape_the_url() -> None:
    spec = CATALOG["mail_messages"]
    assert spec.path_for("a/b?c#d%2F..") == "/users/a%2Fb%3Fc%23d%252F../messages"
    with pytest.raises(ValueError, match="user_id"):
        spec.path_for(None)
    assert CATALOG["users"].path_for(None) == "/users"


def test_lookup_and_chain() -> None:
    with pytest.raises(KeyError, match="valid streams"):
        get_stream("emails")
    assert [s.name for s in parent_chain("drive_items")] == ["users", "drives"]
    assert [s.name for s in parent_chain("chat_messages")] == ["users", "chats"]
    assert parent_chain("users") == []
