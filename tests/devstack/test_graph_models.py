"""What the emulator serves parses with the official Graph models (msgraph-sdk's Kiota classes) with no unknown
properties: every list endpoint's first page, and delta pages including `@removed` entries and the drive
`deleted` facet. Only OData annotations and delta annotations may remain in `additional_data`."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory

from tests.devstack.test_graph_paging import CASES
from tests.devstack.test_graph_support import GraphHarness, running_harness

pytestmark = pytest.mark.timeout(240)

ENTITY = {
    "users": "user", "groups": "group", "applications": "application", "service_principals": "service_principal",
    "group_members": "directory_object", "group_owners": "directory_object", "teams": "team",
    "channels": "channel", "team_members": "conversation_member", "user_chats": "chat",
    "chat_messages": "chat_message", "user_all_chat_messages": "chat_message", "messages": "message",
    "mail_folders": "mail_folder", "folder_messages": "message", "events": "event", "calendar_view": "event",
    "contacts": "contact", "contact_folders": "contact_folder", "folder_contacts": "contact", "user_drives": "drive",
    "drive_root_children": "drive_item", "drive_children": "drive_item", "directory_audits": "directory_audit",
    "sign_ins": "sign_in", "ca_policies": "conditional_access_policy", "directory_roles": "directory_role",
    "directory_role_members": "directory_object", "directory_role_templates": "directory_role_template",
}
ANNOTATIONS = ("@odata.", "@removed", "members@delta")


@pytest.fixture(scope="module")
async def graph(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[GraphHarness]:
    async with running_harness(Path(tmp_path_factory.mktemp("graph-models")), throttled=False) as harness:
        yield harness


def parse(raw: bytes, entity: str) -> list[Any]:
    module = importlib.import_module(f"msgraph.generated.models.{entity}_collection_response")
    cls = getattr(module, "".join(p.title() for p in entity.split("_")) + "CollectionResponse")
    node = JsonParseNodeFactory().get_root_parse_node("application/json", raw)
    page = node.get_object_value(cls)
    return list(page.value or [])


def unknown(model: Any) -> set[str]:
    return {k for k in (model.additional_data or {}) if not k.startswith(ANNOTATIONS)}


@pytest.mark.parametrize("name", sorted(ENTITY))
async def test_list_pages_parse_with_the_official_models(graph: GraphHarness, name: str) -> None:
    url = CASES[name][0](graph)
    reply = await graph.get(url)
    assert reply.status == 200, reply.raw[:300]
    items = parse(reply.raw, ENTITY[name])
    assert items and len(items) == len(reply.json["value"])
    for item in items:
        assert unknown(item) == set(), f"{name}: {sorted(unknown(item))}"


async def test_delta_pages_parse_including_removals(graph: GraphHarness) -> None:
    user = next(u for u in graph.ids("users") if graph.tenant.mailbox_state(u) == "ok" and graph.tenant.has_onedrive(u))
    folder = graph.ids("mailFolders", user)[0]
    drive = graph.ids("drives", user)[0]
    urls = {
        "user": "/users/delta?$deltatoken=latest",
        "group": "/groups/delta?$deltatoken=latest",
        "message": f"/users/{user}/mailFolders/{quote(folder, safe='')}/messages/delta?$deltatoken=latest",
        "drive_item": f"/drives/{drive}/root/delta?token=latest",
    }
    links = {entity: (await graph.get(url)).json["@odata.deltaLink"] for entity, url in urls.items()}
    users = graph.ids("users")
    group = graph.ids("groups")[0]
    message = graph.ids("folderMessages", user, folder)[0]
    item = next(i["id"] for i in graph.records("driveItems", drive) if "file" in i)
    await graph.admin("POST", "/tenant", {"ops": [
        {"op": "update", "kind": "users", "id": users[1], "patch": {"jobTitle": "Model check"}},
        {"op": "soft_delete", "kind": "users", "id": users[2]},
        {"op": "add_member", "group_id": group, "member_id": users[3]},
        {"op": "delete", "kind": "folderMessages", "parents": [user, folder], "id": message},
        {"op": "create", "kind": "folderMessages", "parents": [user, folder], "record": {"subject": "model"}},
        {"op": "delete", "kind": "driveItems", "parents": [drive], "id": item},
    ]})
    for entity, link in links.items():
        reply = await graph.get(link)
        items = parse(reply.raw, entity)
        assert items, entity
        for parsed in items:
            assert unknown(parsed) == set(), f"{entity}: {sorted(unknown(parsed))}"
    deleted = next(d for d in parse((await graph.get(links["drive_item"])).raw, "drive_item") if d.id == item)
    assert deleted.deleted is not None and deleted.deleted.state == "deleted"
