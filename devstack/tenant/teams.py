"""Microsoft Teams records: channels and members of teams, chats, chat members and chat messages.

Chat messages ids are epoch milliseconds (as in Teams); a chat's messages are evenly spaced in time with jitter
smaller than the spacing, so an id maps back to its index arithmetically.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from devstack.tenant import ids, vocab
from devstack.tenant.layout import ChatRef, Layout
from devstack.tenant.people import person
from devstack.tenant.rng import iso_ms, number, rng

Record = dict[str, Any]
BEGINNING = "0001-01-01T00:00:00Z"  # Teams' "whole history visible"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def user_identity(layout: Layout, u: int, with_name: bool = True) -> Record:
    p = person(layout, u)
    return {"@odata.type": "#microsoft.graph.teamworkUserIdentity", "id": p.id,
            "displayName": p.display if with_name else None, "userIdentityType": "aadUser"}


class Teams:
    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.seed = layout.seed

    # --- teams -------------------------------------------------------------------------------------------------
    def channel(self, g: int, c: int) -> Record:
        lay = self.layout
        r = rng(self.seed, "channel", g, c)
        name = "General" if c == 0 else vocab.CHANNEL_TOPICS[1 + (g + c) % (len(vocab.CHANNEL_TOPICS) - 1)]
        if c >= len(vocab.CHANNEL_TOPICS):
            name = f"{name} {c}"
        channel_id = ids.channel_id(self.seed, g, c)
        created = lay.anchor - timedelta(days=400 - c * 7, minutes=r.randrange(1440))
        kind = "standard" if c == 0 or c % 4 else ("private" if c % 8 else "shared")
        encoded = channel_id.replace(":", "%3a").replace("@", "%40")
        return {
            "id": channel_id,
            "createdDateTime": iso_ms(created),
            "displayName": name,
            "description": None if c else "Discussions générales de l'équipe",
            "isFavoriteByDefault": None,
            "email": "" if kind != "standard" else f"{vocab.fold(name)[:10] or 'channel'}.{g}@emea.teams.ms",
            "webUrl": f"https://teams.microsoft.com/l/channel/{encoded}/{name.replace(' ', '%20')}"
                      f"?groupId={lay.group_id(g)}&tenantId={lay.tenant_id}",
            "membershipType": kind,
            "tenantId": lay.tenant_id,
            "isArchived": False,
        }

    def team_member(self, team_id: str, g: int | None, user: Record, owner: bool) -> Record:
        lay = self.layout
        thread = ids.channel_id(self.seed, g, 0) if g is not None else team_id
        guest = user.get("userType") == "Guest"
        return {
            "@odata.type": "#microsoft.graph.aadUserConversationMember",
            "id": ids.conversation_member_id(lay.tenant_id, thread, user["id"]),
            "roles": ["owner"] if owner else (["guest"] if guest else []),
            "displayName": user.get("displayName"),
            "visibleHistoryStartDateTime": BEGINNING,
            "userId": user["id"],
            "email": user.get("mail"),
            "tenantId": lay.tenant_id,
        }

    # --- chats -------------------------------------------------------------------------------------------------
    def _chat_times(self, chat: ChatRef) -> tuple[datetime, int]:
        """(first message time, spacing in ms) of a chat."""
        lay = self.layout
        start = lay.anchor - timedelta(days=240 - number(self.seed, "chat-start", chat.id) % 60)
        count = max(1, lay.chat_message_count(chat))
        spacing = int(timedelta(days=200).total_seconds() * 1000) // count
        return start.replace(microsecond=0), spacing

    def chat(self, chat: ChatRef, viewer: int) -> Record:
        lay = self.layout
        r = rng(self.seed, "chat", chat.id)
        start, spacing = self._chat_times(chat)
        count = lay.chat_message_count(chat)
        last = start + timedelta(milliseconds=spacing * max(0, count - 1))
        topic = None
        meeting = None
        if chat.chat_type == "group":
            topic = r.choice((None, "Projet Alpha 🚀", "Lunch crew", "Release war room", "週次定例", "Design sync"))
        elif chat.chat_type == "meeting":
            topic = r.choice(vocab.EVENT_TOPICS)
            meeting = {
                "calendarEventId": None,
                "joinWebUrl": f"https://teams.microsoft.com/l/meetup-join/{chat.id.replace(':', '%3a')}/0",
                "organizer": user_identity(lay, chat.members[0], with_name=False),
            }
        vr = rng(self.seed, "viewpoint", chat.id, viewer)
        return {
            "id": chat.id,
            "topic": topic,
            "createdDateTime": iso_ms(start - timedelta(minutes=r.randrange(1, 600))),
            "lastUpdatedDateTime": iso_ms(last),
            "chatType": chat.chat_type,
            "webUrl": f"https://teams.microsoft.com/l/chat/{chat.id}/0?tenantId={lay.tenant_id}",
            "tenantId": lay.tenant_id,
            "isHiddenForAllMembers": False,
            "onlineMeetingInfo": meeting,
            "viewpoint": {"isHidden": vr.random() < 0.05,
                          "lastMessageReadDateTime": iso_ms(last - timedelta(minutes=vr.randrange(0, 3000)))},
        }

    def chat_member(self, chat: ChatRef, u: int) -> Record:
        lay = self.layout
        p = person(lay, u)
        return {
            "@odata.type": "#microsoft.graph.aadUserConversationMember",
            "id": ids.conversation_member_id(lay.tenant_id, chat.id, p.id),
            "roles": ["guest"] if p.guest else ["owner"],
            "displayName": p.display,
            "visibleHistoryStartDateTime": BEGINNING,
            "userId": p.id,
            "email": p.mail,
            "tenantId": lay.tenant_id,
        }

    def chat_message_ms(self, chat: ChatRef, k: int) -> int:
        start, spacing = self._chat_times(chat)
        jitter = number(self.seed, "chat-jitter", chat.id, k) % max(1, spacing // 2)
        return int((start - _EPOCH).total_seconds() * 1000) + k * spacing + jitter

    def chat_message_index(self, chat: ChatRef, message_id: str) -> int | None:
        if not message_id.isdigit():
            return None
        start, spacing = self._chat_times(chat)
        k = (int(message_id) - int((start - _EPOCH).total_seconds() * 1000)) // max(1, spacing)
        if k < 0 or str(self.chat_message_ms(chat, k)) != message_id:
            return None
        return k

    def system_message(self, chat: ChatRef, ms: int) -> Record:
        """A group chat opens with Teams' "members added" event: no sender, an eventDetail instead of text."""
        lay = self.layout
        created = iso_ms(_EPOCH + timedelta(milliseconds=ms))
        return {
            "id": str(ms), "replyToId": None, "etag": str(ms), "messageType": "systemEventMessage",
            "createdDateTime": created, "lastModifiedDateTime": created, "lastEditedDateTime": None,
            "deletedDateTime": None, "subject": None, "summary": None, "chatId": chat.id, "importance": "normal",
            "locale": "en-us", "webUrl": None, "channelIdentity": None, "policyViolation": None, "from": None,
            "body": {"contentType": "html", "content": "<systemEventMessage/>"}, "attachments": [], "mentions": [],
            "reactions": [],
            "eventDetail": {
                "@odata.type": "#microsoft.graph.membersAddedEventMessageDetail",
                "visibleHistoryStartDateTime": BEGINNING,
                "members": [user_identity(lay, m, with_name=False) for m in chat.members],
                "initiator": {"application": None, "device": None,
                              "user": user_identity(lay, chat.members[0], with_name=False)},
            },
        }

    def chat_message(self, chat: ChatRef, k: int) -> Record:
        lay = self.layout
        ms = self.chat_message_ms(chat, k)
        if k == 0 and chat.chat_type != "oneOnOne":
            return self.system_message(chat, ms)
        r = rng(self.seed, "chatmsg", chat.id, k)
        created = _EPOCH + timedelta(milliseconds=ms)
        author = chat.members[r.randrange(len(chat.members))]
        text = vocab.CHAT_LINES[r.randrange(len(vocab.CHAT_LINES))]
        edited = r.random() < 0.05
        mention = None
        if len(chat.members) >= 3 and r.random() < 0.15:
            mention = chat.members[(chat.members.index(author) + 1) % len(chat.members)]
        body = text
        mentions: list[Record] = []
        if mention is not None and mention != author:
            who = person(lay, mention)
            body = f'<at id="0">{who.display}</at> {text}'
            mentions = [{"id": 0, "mentionText": who.display,
                         "mentioned": {"application": None, "device": None, "conversation": None,
                                       "user": user_identity(lay, mention)}}]
        reactions = [{
            "reactionType": r.choice(("like", "heart", "laugh", "surprised")),
            "displayName": None,
            "reactionContentUrl": None,
            "createdDateTime": iso_ms(created + timedelta(minutes=r.randrange(1, 120))),
            "user": {"application": None, "device": None,
                     "user": user_identity(lay, chat.members[r.randrange(len(chat.members))], with_name=False)},
        } for _ in range(r.choice((0, 0, 0, 1, 2)))]
        modified = created + timedelta(minutes=r.randrange(1, 30)) if edited else created
        return {
            "id": str(ms),
            "replyToId": None,
            "etag": str(ms if not edited else int((modified - _EPOCH).total_seconds() * 1000)),
            "messageType": "message",
            "createdDateTime": iso_ms(created),
            "lastModifiedDateTime": iso_ms(modified),
            "lastEditedDateTime": iso_ms(modified) if edited else None,
            "deletedDateTime": None,
            "subject": None,
            "summary": None,
            "chatId": chat.id,
            "importance": "high" if r.random() < 0.03 else "normal",
            "locale": "en-us",
            "webUrl": None,
            "channelIdentity": None,
            "policyViolation": None,
            "eventDetail": None,
            "from": {"application": None, "device": None, "user": user_identity(lay, author)},
            "body": {"contentType": "html" if mentions else "text", "content": body},
            "attachments": [],
            "mentions": mentions,
            "reactions": reactions,
        }
