"""How big a demo tenant is. Every count is a target the generator meets exactly (see `layout.py`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True, slots=True)
class TenantSizes:
    """Sizes of every collection; part of a tenant's identity (same seed + sizes -> same bytes).

    `mailboxes_with_child_folders` mailboxes (spread evenly, seeded) have child folders and a grandchild holding part
    of their messages; 0 keeps every mailbox flat (and is left out of `to_json`, so older state dirs still match).

    `messages_per_mailbox` is a mean: the total is `users * messages_per_mailbox` spread over the users that have a
    mailbox. `mailbox_skew` is the sigma of a log-normal weight per mailbox: 0 gives equal mailboxes, 2.5 gives
    "most mailboxes hold a handful of messages, a few hold tens of thousands".
    """

    users: int = 50
    guests: int = 4
    groups: int = 12
    teams: int = 4
    members_per_group: int = 8
    channels_per_team: int = 3
    one_on_one_chats_per_user: int = 1
    group_chats: int = 6
    messages_per_chat: int = 6
    messages_per_mailbox: int = 20
    mailbox_skew: float = 1.0
    events_per_user: int = 8
    contacts_per_user: int = 6
    contact_folders_per_user: int = 1
    drive_items_per_drive: int = 14
    directory_audits: int = 120
    sign_ins: int = 150
    applications: int = 5
    service_principals: int = 12
    directory_roles: int = 6
    members_per_role: int = 2
    conditional_access_policies: int = 8
    mailboxes_with_child_folders: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            kind = (int, float) if f.name == "mailbox_skew" else (int,)
            if not isinstance(value, kind) or isinstance(value, bool) or value < 0:
                what = "number" if f.name == "mailbox_skew" else "integer"
                raise ValueError(f"TenantSizes.{f.name} must be a non-negative {what}, got {value!r}")
        if self.users < 1:
            raise ValueError("TenantSizes.users must be at least 1 (the tenant needs an administrator)")
        if self.guests >= self.users:
            raise ValueError(f"TenantSizes.guests ({self.guests}) must be smaller than users ({self.users}): "
                             "lower guests or raise users (guests are counted among the users)")
        if self.teams > self.groups:
            raise ValueError(f"TenantSizes.teams ({self.teams}) cannot exceed groups ({self.groups}): teams are "
                             "groups, so lower teams or raise groups")
        if self.service_principals < self.applications:
            raise ValueError(
                f"TenantSizes.service_principals ({self.service_principals}) must be >= applications "
                f"({self.applications}): every app registration has its service principal in its home tenant, "
                "so raise service_principals or lower applications"
            )

    @property
    def total_messages(self) -> int:
        return self.users * self.messages_per_mailbox

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if not data["mailboxes_with_child_folders"]:
            del data["mailboxes_with_child_folders"]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TenantSizes:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown TenantSizes field(s) {unknown}; known: {sorted(known)}")
        return cls(**data)

    @classmethod
    def demo(cls) -> TenantSizes:
        """~50 users, every kind and every per-parent condition present (five mailboxes with child folders);
        builds and pages in milliseconds."""
        return cls(mailboxes_with_child_folders=5)

    @classmethod
    def small(cls) -> TenantSizes:
        return cls(
            users=200, guests=12, groups=40, teams=12, members_per_group=15, channels_per_team=4,
            one_on_one_chats_per_user=2, group_chats=30, messages_per_chat=12, messages_per_mailbox=50,
            mailbox_skew=1.2, events_per_user=20, contacts_per_user=12, contact_folders_per_user=2,
            drive_items_per_drive=40, directory_audits=2_000, sign_ins=3_000, applications=15,
            service_principals=40, directory_roles=8, members_per_role=3, conditional_access_policies=8,
        )

    @classmethod
    def medium(cls) -> TenantSizes:
        """1,000 users and 100,000 mail messages."""
        return cls(
            users=1_000, guests=50, groups=200, teams=60, members_per_group=25, channels_per_team=5,
            one_on_one_chats_per_user=3, group_chats=150, messages_per_chat=20, messages_per_mailbox=100,
            mailbox_skew=1.5, events_per_user=40, contacts_per_user=25, contact_folders_per_user=2,
            drive_items_per_drive=100, directory_audits=20_000, sign_ins=50_000, applications=60,
            service_principals=150, directory_roles=10, members_per_role=4, conditional_access_policies=12,
        )

    @classmethod
    def large(cls) -> TenantSizes:
        """10,000 users, 1,000,000 mail messages with skewed mailbox sizes (a few mailboxes hold tens of thousands)."""
        return cls(
            users=10_000, guests=400, groups=1_500, teams=400, members_per_group=30, channels_per_team=6,
            one_on_one_chats_per_user=3, group_chats=1_500, messages_per_chat=25, messages_per_mailbox=100,
            mailbox_skew=2.5, events_per_user=50, contacts_per_user=30, contact_folders_per_user=2,
            drive_items_per_drive=200, directory_audits=200_000, sign_ins=500_000, applications=300,
            service_principals=800, directory_roles=12, members_per_role=5, conditional_access_policies=20,
        )

    @classmethod
    def preset(cls, name: str) -> TenantSizes:
        presets = {"demo": cls.demo, "small": cls.small, "medium": cls.medium, "large": cls.large}
        try:
            return presets[name]()
        except KeyError:
            raise ValueError(f"unknown tenant size preset {name!r}; use one of {sorted(presets)}") from None
