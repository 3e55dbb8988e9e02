"""Every generated (and created) entity parses with the official Graph models of msgraph-sdk, losslessly.

Two checks per record: (1) no unknown property anywhere (Kiota's `additional_data` holds only `@odata.*` keys,
recursively), and (2) every non-null value survives a parse + re-serialize round trip, which catches misspelled
enum members, wrong value types and malformed dates (Kiota silently turns those into None).
"""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import datetime
from typing import Any

import pytest
from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory
from kiota_serialization_json.json_serialization_writer import JsonSerializationWriter
from msgraph.generated.models.aad_user_conversation_member import AadUserConversationMember
from msgraph.generated.models.application import Application
from msgraph.generated.models.channel import Channel
from msgraph.generated.models.chat import Chat
from msgraph.generated.models.chat_message import ChatMessage
from msgraph.generated.models.conditional_access_policy import ConditionalAccessPolicy
from msgraph.generated.models.contact import Contact
from msgraph.generated.models.contact_folder import ContactFolder
from msgraph.generated.models.conversation_member import ConversationMember
from msgraph.generated.models.directory_audit import DirectoryAudit
from msgraph.generated.models.directory_object import DirectoryObject
from msgraph.generated.models.directory_role import DirectoryRole
from msgraph.generated.models.directory_role_template import DirectoryRoleTemplate
from msgraph.generated.models.drive import Drive
from msgraph.generated.models.drive_item import DriveItem
from msgraph.generated.models.event import Event
from msgraph.generated.models.group import Group
from msgraph.generated.models.mail_folder import MailFolder
from msgraph.generated.models.message import Message
from msgraph.generated.models.service_principal import ServicePrincipal
from msgraph.generated.models.sign_in import SignIn
from msgraph.generated.models.user import User

from devstack.tenant import KINDS, DemoTenant, TenantSizes, build_tenant
from tests.devstack.test_tenant import every_collection

MODELS: dict[str, Any] = {
    "users": User, "groups": Group, "applications": Application, "servicePrincipals": ServicePrincipal,
    "directoryAudits": DirectoryAudit, "signIns": SignIn, "conditionalAccessPolicies": ConditionalAccessPolicy,
    "directoryRoles": DirectoryRole, "directoryRoleTemplates": DirectoryRoleTemplate,
    "groupMembers": DirectoryObject, "groupOwners": DirectoryObject, "directoryRoleMembers": DirectoryObject,
    "groupDrives": Drive, "drives": Drive, "channels": Channel, "teamMembers": ConversationMember,
    "chatMembers": ConversationMember, "chats": Chat, "mailFolders": MailFolder, "messages": Message,
    "folderMessages": Message, "events": Event, "contactFolders": ContactFolder, "contacts": Contact,
    "folderContacts": Contact, "chatMessages": ChatMessage, "driveItems": DriveItem,
}
EXPECTED_CLASS = {"#microsoft.graph.user": User, "#microsoft.graph.group": Group,
                  "#microsoft.graph.servicePrincipal": ServicePrincipal,
                  "#microsoft.graph.aadUserConversationMember": AadUserConversationMember}
_FACTORY = JsonParseNodeFactory()
_DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


def parse(model: Any, record: dict[str, Any]) -> Any:
    node = _FACTORY.get_root_parse_node("application/json", json.dumps(record).encode())
    return node.get_object_value(model)


def unknown_properties(obj: Any, path: str = "$") -> list[str]:
    found = [f"{path}.{k}" for k in (getattr(obj, "additional_data", None) or {}) if not k.startswith("@odata.")]
    if not dataclasses.is_dataclass(obj):
        return found
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, list):
            for i, item in enumerate(value):
                if dataclasses.is_dataclass(item):
                    found += unknown_properties(item, f"{path}.{f.name}[{i}]")
        elif dataclasses.is_dataclass(value) and f.name != "backing_store":
            found += unknown_properties(value, f"{path}.{f.name}")
    return found


def _normal(value: Any) -> Any:
    if isinstance(value, str) and _DATE.match(value):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).replace(tzinfo=None)
        except ValueError:
            return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def lost_values(original: Any, back: Any, path: str = "$") -> list[str]:
    """Non-null values of `original` that the SDK round trip dropped or changed."""
    if isinstance(original, dict):
        if not isinstance(back, dict):
            return [path]
        out = []
        for key, value in original.items():
            if key.startswith("@odata.") or value is None:
                continue
            if key not in back:
                out.append(f"{path}.{key} (value {value!r} not understood)")
            else:
                out += lost_values(value, back[key], f"{path}.{key}")
        return out
    if isinstance(original, list):
        if not isinstance(back, list) or len(back) != len(original):
            return [f"{path} (list changed: {original!r} -> {back!r})"]
        pairs = enumerate(zip(original, back, strict=True))
        return [p for i, (a, b) in pairs for p in lost_values(a, b, f"{path}[{i}]")]
    if _normal(original) != _normal(back) and str(original).lower() != str(back).lower():
        return [f"{path}: {original!r} -> {back!r}"]
    return []


def problems(model: Any, record: dict[str, Any]) -> list[str]:
    obj = parse(model, record)
    found = unknown_properties(obj)
    expected = EXPECTED_CLASS.get(record.get("@odata.type", ""))
    if expected is not None and not isinstance(obj, expected):
        found.append(f"@odata.type {record['@odata.type']} parsed as {type(obj).__name__}")
    writer = JsonSerializationWriter()
    writer.write_object_value(None, obj)
    found += lost_values(record, json.loads(writer.get_serialized_content()))
    return found


@pytest.fixture(scope="module")
def demo() -> DemoTenant:
    return build_tenant(4242, TenantSizes.demo())


@pytest.fixture(scope="module")
def collections(demo: DemoTenant) -> list[tuple[str, tuple[str, ...]]]:
    return every_collection(demo)


def test_the_checker_catches_unknown_properties_and_bad_values() -> None:
    user = {"id": "x", "displayName": "A", "assignedPlans": [{"capabilityStatus": "Enabled", "bogus": 1}],
            "employeeOrgData": {"division": "R&D", "typo": 2}, "accountEnabled": "yes"}
    found = problems(User, user)
    assert any("assigned_plans[0].bogus" in p for p in found)
    assert any("typo" in p for p in found)
    assert any("accountEnabled" in p for p in found)
    assert any("importance" in p for p in problems(Message, {"id": "m", "importance": "urgent"}))
    assert any("receivedDateTime" in p for p in problems(Message, {"id": "m", "receivedDateTime": "yesterday"}))
    member = {"@odata.type": "#microsoft.graph.aadUserConversationMember", "id": "m", "userId": "u"}
    assert problems(ConversationMember, member) == []


@pytest.mark.parametrize("kind", KINDS)
def test_every_generated_record_parses_with_the_graph_models(
        demo: DemoTenant, collections: list[tuple[str, tuple[str, ...]]], kind: str) -> None:
    """All records of small kinds; for per-parent kinds a spread of parents and of positions in each."""
    parents_list = [p for k, p in collections if k == kind]
    checked = 0
    for n, parents in enumerate(parents_list[:: max(1, len(parents_list) // 12)]):
        view = demo.collection(kind, *parents)
        assert view is not None
        count = view.count()
        records = view.page(0, 1000) if len(parents_list) == 1 else view.page((n * 7) % max(1, count - 10), 12)
        for record in records:
            assert problems(MODELS[kind], record) == [], (kind, record["id"])
            checked += 1
    assert checked > 0, f"no {kind} record was generated in the demo tenant"


def test_members_carry_their_directory_type(demo: DemoTenant,
                                            collections: list[tuple[str, tuple[str, ...]]]) -> None:
    seen = set()
    for kind, parents in collections:
        if kind in ("groupMembers", "groupOwners", "directoryRoleMembers", "teamMembers", "chatMembers"):
            for record in demo.collection(kind, *parents).page(0, 1000):  # type: ignore[union-attr]
                seen.add(record["@odata.type"])
                assert isinstance(parse(MODELS[kind], record), EXPECTED_CLASS[record["@odata.type"]])
    assert seen == {"#microsoft.graph.user", "#microsoft.graph.group", "#microsoft.graph.aadUserConversationMember"}


def test_outlook_items_carry_etags(demo: DemoTenant, collections: list[tuple[str, tuple[str, ...]]]) -> None:
    for kind in ("messages", "events", "contacts"):
        record = next(r for k, p in collections if k == kind
                      for r in demo.collection(k, *p).page(0, 1))  # type: ignore[union-attr]
        assert record["@odata.etag"] == f'W/"{record["changeKey"]}"'


CREATIONS: list[tuple[str, dict[str, Any]]] = [
    ("users", {"displayName": "Zoë Nguyễn", "userPrincipalName": "zoe@contoso.example", "accountEnabled": True}),
    ("groups", {"displayName": "Équipe Nouvelle 🚀", "mailNickname": "nouvelle"}),
    ("applications", {"displayName": "New App"}),
    ("servicePrincipals", {"displayName": "New SP"}),
    ("messages", {"subject": "Hello 👋", "isRead": False}),
    ("events", {"subject": "Planning"}),
    ("contacts", {"givenName": "Ana", "surname": "Lima"}),
    ("driveItems", {"name": "new.txt", "file": {"mimeType": "text/plain"}}),
    ("driveItems", {"name": "New folder", "folder": {"childCount": 0}}),
    ("chatMessages", {"body": {"contentType": "text", "content": "late hello"}}),
    ("directoryAudits", {"activityDisplayName": "Add user"}),
    ("signIns", {"appDisplayName": "Late sign-in"}),
]


@pytest.mark.parametrize(("kind", "given"), CREATIONS)
def test_created_records_parse_with_the_graph_models(kind: str, given: dict[str, Any]) -> None:
    tenant = build_tenant(4242, TenantSizes.demo())
    owner = next(u["id"] for u in tenant.collection("users").page(0, 100)  # type: ignore[union-attr]
                 if tenant.mailbox_state(u["id"]) == "ok" and tenant.has_onedrive(u["id"]))
    parents: tuple[str, ...] = ()
    if kind in ("messages", "events", "contacts"):
        parents = (owner,)
    elif kind == "driveItems":
        parents = (tenant.collection("drives", owner).page(0, 1)[0]["id"],)  # type: ignore[union-attr]
    elif kind == "chatMessages":
        parents = (tenant.collection("chats", owner).page(0, 1)[0]["id"],)  # type: ignore[union-attr]
    op = "append" if kind in ("directoryAudits", "signIns") else "create"
    record = tenant.apply({"op": op, "kind": kind, "parents": list(parents), "record": given})
    assert record is not None
    assert problems(MODELS[kind], record) == []
    assert tenant.collection(kind, *parents).get(record["id"]) == record  # type: ignore[union-attr]


def test_group_chats_open_with_a_members_added_system_event(demo: DemoTenant,
                                                          collections: list[tuple[str, tuple[str, ...]]]) -> None:
    from msgraph.generated.models.members_added_event_message_detail import MembersAddedEventMessageDetail

    chat_id = next(p[0] for k, p in collections if k == "chatMessages" and p[0].endswith("@thread.v2"))
    first = demo.collection("chatMessages", chat_id).page(0, 1)[0]  # type: ignore[union-attr]
    assert first["messageType"] == "systemEventMessage" and first["from"] is None
    assert problems(ChatMessage, first) == []
    parsed = parse(ChatMessage, first)
    assert isinstance(parsed.event_detail, MembersAddedEventMessageDetail)
    members = demo.collection("chatMembers", chat_id).page(0, 100)  # type: ignore[union-attr]
    assert [m.id for m in parsed.event_detail.members or []] == [m["userId"] for m in members]
