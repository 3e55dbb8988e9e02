"""Exchange Online records: mail folders, messages, events, contact folders and contacts of one mailbox.

A mailbox's messages are one sequence in time order (receivedDateTime monotonic in the index, spread over the
year before the anchor); `layout` assigns each index to a folder arithmetically, so a folder view is a strided
slice of the same sequence and both views page in O(n).
"""

from __future__ import annotations

import base64
import functools
import random
from dataclasses import dataclass
from datetime import timedelta
from hashlib import blake2b as _blake2b
from typing import Any

from devstack.tenant import ids, vocab
from devstack.tenant.layout import CHILD_MAIL_FOLDERS, MAIL_FOLDERS, Layout
from devstack.tenant.people import Person, email, person
from devstack.tenant.rng import digest, iso, local7, rng, spread

Record = dict[str, Any]
CONTACT_FOLDER_NAMES = ("Contacts", "Fournisseurs", "Family 👪", "Clients", "顧客")
ROOT_FOLDER = 250  # msgfolderroot: parent of the top-level folders
TIME_ZONES = ("Pacific Standard Time", "Eastern Standard Time", "W. Europe Standard Time", "Romance Standard Time",
              "Tokyo Standard Time", "UTC", "GMT Standard Time")


@functools.lru_cache(maxsize=8192)
def _folder_id(seed: int, tag: str, user_id: str, folder: int) -> str:
    return ids.outlook_id(seed, tag, user_id, folder, 0)


@functools.lru_cache(maxsize=64)
def _reply_chain(first_body: int) -> str:
    """The quoted history of a long thread; it only depends on which body it starts from."""
    quoted = "".join(f"<blockquote><p>{vocab.MAIL_BODIES[(first_body + q) % len(vocab.MAIL_BODIES)]}</p>"
                     for q in range(400))
    return f"<div><hr>{quoted}{'</blockquote>' * 400}</div>"


def _etag(seed: int, *parts: object, raw: bytes | None = None) -> tuple[str, str]:
    key = base64.b64encode(b"\x09\x00\x00\x00\x16\x00\x00\x00" + (raw or digest(seed, "ck", *parts, size=16))).decode()
    return key, f'W/"{key}"'


@dataclass(frozen=True, slots=True)
class _Mailbox:
    owner: Person
    count: int
    folder_ids: tuple[str, ...]
    conversation_prefix: str  # conversationId = the Inbox id's store part + "AQAQ" + the thread's bytes
    msg_prefix: str  # the "seed, kind, user" part of the rng/digest addresses of its messages
    bytes_prefix: str
    conv_prefix: str
    id_prefix: str  # of the digest in a message id: seed, "message", user id
    id_prefixes: tuple[bytes, ...]  # ids.outlook_item_prefix of each folder


class Outlook:
    MAILBOX_CACHE = 4096

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.seed = layout.seed
        self._mailboxes: dict[int, _Mailbox] = {}
        self._year_start = layout.anchor - timedelta(days=365)
        self._year_seconds = (layout.anchor - self._year_start).total_seconds()

    def _mailbox(self, u: int) -> _Mailbox:
        """What every message of mailbox `u` shares; pure in (seed, layout, u), so bounded and never stale."""
        found = self._mailboxes.get(u)
        if found is None:
            if len(self._mailboxes) >= self.MAILBOX_CACHE:
                self._mailboxes.clear()
            lay = self.layout
            owner = person(lay, u)
            folder_ids = tuple(self.mail_folder_id(owner.id, f) for f in range(lay.mail_folder_total(u)))
            found = self._mailboxes[u] = _Mailbox(
                owner=owner,
                count=lay.messages_in(u),
                folder_ids=folder_ids,
                conversation_prefix=folder_ids[0][:-12] + "AQAQ",
                msg_prefix=f"{self.seed}\x1fmsg\x1f{u}\x1f",
                bytes_prefix=f"{self.seed}\x1fmsg-bytes\x1f{u}\x1f",
                conv_prefix=f"{self.seed}\x1fconv\x1f{u}\x1f",
                id_prefix=f"{self.seed}\x1fmessage\x1f{owner.id}\x1f",
                id_prefixes=tuple(ids.outlook_item_prefix(self.seed, "message", owner.id, f)
                                  for f in range(len(folder_ids))),
            )
        return found

    # --- folders -----------------------------------------------------------------------------------------------
    def mail_folder_id(self, user_id: str, folder: int) -> str:
        return _folder_id(self.seed, "mailFolder", user_id, folder)

    def mail_folder(self, user_id: str, u: int | None, folder: int) -> Record:
        lay = self.layout
        total = lay.folder_count(u, folder) if u is not None else 0
        if folder < len(MAIL_FOLDERS):
            well_known, name, _ = MAIL_FOLDERS[folder]
        else:
            well_known, name = "", CHILD_MAIL_FOLDERS[folder - len(MAIL_FOLDERS)][1]
        parent = lay.mail_folder_parent(folder)
        unread = 0 if well_known in ("sentitems", "drafts", "outbox") else total // 7
        return {
            "id": self.mail_folder_id(user_id, folder),
            "displayName": name,
            "parentFolderId": self.mail_folder_id(user_id, ROOT_FOLDER if parent is None else parent),
            "childFolderCount": lay.mail_folder_children(u, folder),
            "unreadItemCount": unread,
            "totalItemCount": total,
            "isHidden": False,
        }

    def contact_folder_id(self, user_id: str, folder: int) -> str:
        return _folder_id(self.seed, "contactFolder", user_id, folder)

    def contact_folder(self, user_id: str, folder: int) -> Record:
        """Folder 0 is the default Contacts folder (under the mailbox root); the others are its children, as
        Graph's `/contactFolders` lists them."""
        parent = self.contact_folder_id(user_id, ROOT_FOLDER if folder == 0 else 0)
        name = CONTACT_FOLDER_NAMES[folder % len(CONTACT_FOLDER_NAMES)]
        if folder >= len(CONTACT_FOLDER_NAMES):
            name = f"{name} {folder}"
        return {"id": self.contact_folder_id(user_id, folder), "displayName": name, "parentFolderId": parent}

    # --- messages ----------------------------------------------------------------------------------------------
    def message(self, u: int, i: int) -> Record:
        lay = self.layout
        box = self._mailbox(u)
        owner = box.owner
        # same bytes as rng(seed, "msg", u, i), digest(seed, "msg-bytes", u, i) and spread(...) over the year,
        # with the mailbox's part of each address and the year's span computed once
        r = random.Random(int.from_bytes(_blake2b((box.msg_prefix + str(i)).encode(), digest_size=8).digest(),
                                         "big"))
        folder = lay.folder_of(u, i)
        well_known = MAIL_FOLDERS[folder][0] if folder < len(MAIL_FOLDERS) else ""
        received = self._year_start + timedelta(
            seconds=self._year_seconds / max(box.count, 1) * (i + r.random() * 0.9))
        sent = received - timedelta(seconds=r.randrange(1, 90))
        users = lay.sizes.users
        outgoing = well_known in ("sentitems", "drafts", "outbox")
        external = r.random() < 0.25
        if outgoing:
            sender = email(owner)
        elif external:
            company = r.choice(vocab.COMPANIES)
            first = r.choice(vocab.FIRST_NAMES)
            sender = {"name": f"{first} ({company})",
                      "address": f"{vocab.fold(first).lower() or 'info'}@{vocab.fold(company).lower()}.example"}
        else:
            sender = email(person(lay, r.randrange(users)))
        to = [email(owner)] if not outgoing else [
            email(person(lay, r.randrange(users))) for _ in range(1 + r.randrange(3))]
        cc = [email(person(lay, r.randrange(users))) for _ in range(r.choice((0, 0, 0, 1, 2)))]
        topic = vocab.MAIL_SUBJECT_TOPICS[r.randrange(len(vocab.MAIL_SUBJECT_TOPICS))]
        subject = vocab.SUBJECT_DECORATIONS[r.randrange(len(vocab.SUBJECT_DECORATIONS))] + topic
        if r.random() < 0.01:
            subject = ""  # "(No subject)" in Outlook
        text = vocab.MAIL_BODIES[r.randrange(len(vocab.MAIL_BODIES))]
        thread = ""
        if i % 397 == 5:  # now and then a long reply chain (~40 KB): writers must cope with big rows
            thread = _reply_chain(i % len(vocab.MAIL_BODIES))
        html = (f"<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\"></head>"
                f"<body><div>{text}</div><div><br></div><div>— {sender['name']}</div>{thread}</body></html>")
        draft = well_known == "drafts"
        flagged = r.random() < 0.08
        blob = _blake2b((box.bytes_prefix + str(i)).encode(), digest_size=26).digest()  # change key + message id
        change_key, etag = _etag(self.seed, raw=blob[:16])
        conversation = _blake2b((box.conv_prefix + str(i // 3)).encode(), digest_size=22).digest()
        item_id = ids.outlook_item_id(box.id_prefixes[folder], i, _blake2b((box.id_prefix + str(i)).encode(),
                                                                            digest_size=12).digest())
        received_iso = iso(received)
        return {
            "@odata.etag": etag,
            "id": item_id,
            "createdDateTime": received_iso,
            "lastModifiedDateTime": iso(received + timedelta(minutes=r.randrange(0, 600))),
            "changeKey": change_key,
            "categories": [r.choice(vocab.CATEGORIES)] if r.random() < 0.1 else [],
            "receivedDateTime": received_iso,
            "sentDateTime": None if draft else iso(sent),
            "hasAttachments": r.random() < 0.15,
            "internetMessageId": f"<{blob[16:].hex().upper()}@"
                                 f"{'contoso' if not external else 'mail'}.prod.outlook.com>",
            "subject": subject,
            "bodyPreview": text[:255],
            "importance": r.choice(("normal", "normal", "normal", "high", "low")),
            "parentFolderId": box.folder_ids[folder],
            "conversationId": box.conversation_prefix + base64.b64encode(conversation[:9]).decode(),
            "conversationIndex": base64.b64encode(b"\x01" + conversation).decode(),
            "isDeliveryReceiptRequested": False if not draft else None,
            "isReadReceiptRequested": r.random() < 0.02,
            "isRead": outgoing or r.random() < 0.8,
            "isDraft": draft,
            "webLink": "https://outlook.office365.com/owa/?ItemID=" + item_id.replace("/", "%2F").replace(
                "+", "%2B").replace("=", "%3D") + "&exvsurl=1&viewmodel=ReadMessageItem",
            "inferenceClassification": "focused" if r.random() < 0.7 else "other",
            "body": {"contentType": "html", "content": html},
            "sender": None if draft else {"emailAddress": sender},
            "from": None if draft else {"emailAddress": sender},
            "toRecipients": [{"emailAddress": a} for a in to],
            "ccRecipients": [{"emailAddress": a} for a in cc],
            "bccRecipients": [],
            "replyTo": [],
            "flag": {
                "flagStatus": "flagged",
                "startDateTime": {"dateTime": local7(received), "timeZone": "UTC"},
                "dueDateTime": {"dateTime": local7(received + timedelta(days=3)), "timeZone": "UTC"},
            } if flagged else {"flagStatus": "notFlagged"},
        }

    # --- events ------------------------------------------------------------------------------------------------
    def event(self, u: int, k: int) -> Record:
        lay = self.layout
        owner = person(lay, u)
        n = max(1, lay.sizes.events_per_user)
        r = rng(self.seed, "event", u, k)
        start = spread(lay.anchor - timedelta(days=300), lay.anchor + timedelta(days=65), k, n, r.random())
        start = start.replace(minute=(start.minute // 30) * 30, second=0)
        all_day = r.random() < 0.05
        if all_day:
            start = start.replace(hour=0, minute=0)
        duration = timedelta(days=1) if all_day else timedelta(minutes=r.choice((15, 30, 30, 60, 60, 90, 120)))
        end = start + duration
        recurring = not all_day and r.random() < 0.12
        online = r.random() < 0.6
        organizer_self = r.random() < 0.5
        organizer = owner if organizer_self else person(lay, r.randrange(lay.sizes.users))
        attendees = [person(lay, r.randrange(lay.sizes.users)) for _ in range(r.randrange(0, 6))]
        room = r.choice(vocab.ROOMS)
        city = owner.city
        topic = vocab.EVENT_TOPICS[r.randrange(len(vocab.EVENT_TOPICS))]
        created = start - timedelta(days=r.randrange(1, 30))
        change_key, etag = _etag(self.seed, "event", u, k)
        item_id = ids.outlook_id(self.seed, "event", owner.id, 0, k)
        tz = r.choice(TIME_ZONES)
        join = f"https://teams.microsoft.com/l/meetup-join/19%3ameeting_{ids.hex32(self.seed, 'meet', u * 65536 + k)}" \
               f"%40thread.v2/0?context=%7b%22Tid%22%3a%22{lay.tenant_id}%22%7d"
        location = {
            "displayName": room, "locationType": "conferenceRoom" if "Room" in room else "default",
            "uniqueId": room, "uniqueIdType": "private" if "Room" not in room else "directory",
            "address": {"street": city[5], "city": city[0], "state": city[1], "countryOrRegion": city[3],
                        "postalCode": city[4]},
            "coordinates": {"latitude": city[6], "longitude": city[7]},
        }
        return {
            "@odata.etag": etag,
            "id": item_id,
            "createdDateTime": iso(created),
            "lastModifiedDateTime": iso(created + timedelta(hours=r.randrange(0, 48))),
            "changeKey": change_key,
            "categories": [r.choice(vocab.CATEGORIES)] if r.random() < 0.15 else [],
            "transactionId": None,
            "originalStartTimeZone": tz,
            "originalEndTimeZone": tz,
            "iCalUId": "040000008200E00074C5B7101A82E00800000000"
            + digest(self.seed, "ical", u, k, size=28).hex().upper(),
            "reminderMinutesBeforeStart": 15,
            "isReminderOn": not all_day,
            "hasAttachments": r.random() < 0.05,
            "subject": topic,
            "bodyPreview": "" if not online
            else "Microsoft Teams meeting\r\nJoin on your computer, mobile app or room device",
            "importance": "normal",
            "sensitivity": "private" if r.random() < 0.05 else "normal",
            "isAllDay": all_day,
            "isCancelled": r.random() < 0.03,
            "isOrganizer": organizer_self,
            "responseRequested": True,
            "seriesMasterId": None,
            "showAs": "free" if all_day else "busy",
            "type": "seriesMaster" if recurring else "singleInstance",
            "webLink": "https://outlook.office365.com/owa/?itemid=" + item_id.replace("/", "%2F").replace(
                "+", "%2B").replace("=", "%3D") + "&exvsurl=1&path=/calendar/item",
            "onlineMeetingUrl": None,
            "isOnlineMeeting": online,
            "onlineMeetingProvider": "teamsForBusiness" if online else "unknown",
            "allowNewTimeProposals": True,
            "isDraft": False,
            "hideAttendees": False,
            "recurrence": {
                "pattern": {"type": "weekly", "interval": 1, "month": 0, "dayOfMonth": 0,
                            "daysOfWeek": [start.strftime("%A").lower()], "firstDayOfWeek": "sunday",
                            "index": "first"},
                "range": {"type": "numbered", "startDate": start.strftime("%Y-%m-%d"), "endDate": "0001-01-01",
                          "recurrenceTimeZone": "UTC", "numberOfOccurrences": 10},
            } if recurring else None,
            "onlineMeeting": {"joinUrl": join, "conferenceId": None, "tollNumber": None, "tollFreeNumbers": [],
                              "phones": [], "quickDial": None} if online else None,
            "responseStatus": {"response": "organizer" if organizer_self
                               else r.choice(("accepted", "tentativelyAccepted", "notResponded")),
                               "time": iso(created + timedelta(hours=1)) if not organizer_self else
                               "0001-01-01T00:00:00Z"},
            "body": {"contentType": "html", "content": f"<html><body><p>{topic}</p></body></html>"},
            "start": {"dateTime": local7(start), "timeZone": "UTC"},
            "end": {"dateTime": local7(end), "timeZone": "UTC"},
            "location": location,
            "locations": [location],
            "attendees": [{
                "type": r.choice(("required", "required", "optional")),
                "status": {"response": r.choice(("none", "accepted", "declined", "tentativelyAccepted")),
                           "time": iso(created + timedelta(hours=2))},
                "emailAddress": email(a),
            } for a in attendees],
            "organizer": {"emailAddress": email(organizer)},
        }

    # --- contacts ----------------------------------------------------------------------------------------------
    def contact(self, u: int, folder: int, k: int) -> Record:
        lay = self.layout
        owner = person(lay, u)
        r = rng(self.seed, "contact", u, folder, k)
        given = r.choice(vocab.FIRST_NAMES)
        surname = r.choice(vocab.LAST_NAMES)
        company = r.choice(vocab.COMPANIES)
        city = r.choice(vocab.CITIES)
        created = lay.anchor - timedelta(days=r.randrange(1, 900), minutes=r.randrange(0, 1440))
        change_key, etag = _etag(self.seed, "contact", u, folder, k)
        mail = f"{vocab.fold(given).lower() or 'contact'}.{vocab.fold(surname).lower() or k}@" \
               f"{vocab.fold(company).lower()}.example"
        return {
            "@odata.etag": etag,
            "id": ids.outlook_id(self.seed, "contact", owner.id, folder, k),
            "createdDateTime": iso(created),
            "lastModifiedDateTime": iso(created + timedelta(days=r.randrange(0, 30))),
            "changeKey": change_key,
            "categories": [r.choice(vocab.CATEGORIES)] if r.random() < 0.2 else [],
            "parentFolderId": self.contact_folder_id(owner.id, folder),
            # day capped at 28: a 29 February creation date has no twin in most birth years
            "birthday": iso(created.replace(year=1960 + r.randrange(40), day=min(created.day, 28),
                                            hour=11, minute=59, second=0))
            if r.random() < 0.3 else None,
            "fileAs": f"{surname}, {given}",
            "displayName": f"{given} {surname}",
            "givenName": given,
            "initials": None,
            "middleName": None,
            "nickName": None,
            "surname": surname,
            "title": None,
            "yomiGivenName": None,
            "yomiSurname": None,
            "yomiCompanyName": None,
            "generation": None,
            "imAddresses": [],
            "jobTitle": r.choice(vocab.JOB_TITLES),
            "companyName": company,
            "department": None,
            "officeLocation": None,
            "profession": None,
            "businessHomePage": f"https://www.{vocab.fold(company).lower()}.example" if r.random() < 0.3 else None,
            "assistantName": None,
            "manager": None,
            "homePhones": [],
            "mobilePhone": f"{city[8]} {r.randrange(100, 999)} {r.randrange(1000, 9999)}" if r.random() < 0.6
            else None,
            "businessPhones": [f"{city[8]} 555 {r.randrange(1000, 9999)}"],
            "spouseName": None,
            "personalNotes": "Rencontré au salon 🤝" if r.random() < 0.1 else "",
            "children": [],
            "emailAddresses": [{"name": f"{given} {surname}", "address": mail}],
            "homeAddress": {},
            "businessAddress": {"street": city[5], "city": city[0], "state": city[1], "countryOrRegion": city[3],
                                "postalCode": city[4]},
            "otherAddress": {},
        }

