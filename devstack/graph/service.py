"""The Graph emulator's request pipeline, independent of the HTTP server so `$batch` items run through it too:
authenticate -> route -> permission -> query options -> throttle -> parents -> page / entity / delta."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from devstack.graph import cursors, endpoints, odata_filter, paging, permissions, query
from devstack.graph.counters import Counters
from devstack.graph.delta_handler import serve_delta
from devstack.graph.endpoints import Endpoint
from devstack.graph.errors import GraphError
from devstack.graph.faults import NO_FAULT, FaultDecision
from devstack.graph.messages import GraphRequest, GraphResponse, error_response, graph_date
from devstack.graph.settings import GraphSettings
from devstack.graph.throttle import ThrottleModel, ThrottleRequest, directory_cost, format_retry_after
from devstack.tenant.model import Collection, Record, Tenant
from devstack.tokens import GRAPH_RESOURCE, InvalidToken, TokenVerifier

log = logging.getLogger("devstack.graph")
GRAPH_FIRST_PARTY_APP = "00000003-0000-0000-c000-000000000000"
_LINK_SAFE = "$,'()/:@!*-._~"
# Well-known mail folder names (mailfolder resource docs) -> display name of that folder in an English mailbox.
WELL_KNOWN_MAIL_FOLDERS = {
    "inbox": "Inbox", "drafts": "Drafts", "sentitems": "Sent Items", "deleteditems": "Deleted Items",
    "junkemail": "Junk Email", "archive": "Archive", "outbox": "Outbox", "conversationhistory": "Conversation History",
}


@dataclass(slots=True)
class _Target:
    """What a request resolved to: the collection to read and how to read it."""

    coll: Collection | None
    record: Record | None = None  # single-entity endpoints
    predicate: paging.Predicate | None = None
    parent_ids: tuple[str, ...] = ()
    user_id: str | None = None


class GraphService:
    def __init__(
        self,
        *,
        tenant: Tenant,
        verifier: TokenVerifier,
        settings: GraphSettings,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.tenant = tenant
        self.verifier = verifier
        self.settings = settings
        self.codec = cursors.TokenCodec.load_or_create(settings.state_dir)
        self.epochs = cursors.DeltaEpochs(settings.state_dir)
        self.counters = Counters()
        self.throttle = ThrottleModel(settings.throttle, tenant_users=self._user_count, clock=clock)
        self.wall_clock = wall_clock
        self._upn_index: dict[str, str] | None = None
        self.fault_occurrences: dict[str, int] = {}
        self._upn_seq = -1
        self._user_ids: dict[str, str | None] = {}
        self._user_ids_seq = -1

    # --- helpers ----------------------------------------------------------------------------------------------
    def _user_count(self) -> int:
        users = self.tenant.collection("users")
        return users.count() if users is not None else 0

    def resolve_user(self, key: str) -> Record | None:
        users = self.tenant.collection("users")
        if users is None:
            return None
        found = users.get(key)
        if found is not None or "@" not in key:
            return found
        seq = self.tenant.current_seq()
        if self._upn_index is None or seq != self._upn_seq:
            self._upn_index = {str(u.get("userPrincipalName", "")).lower(): str(u["id"]) for u in users.iter_from(0)}
            self._upn_seq = seq
        user_id = self._upn_index.get(key.lower())
        return users.get(user_id) if user_id else None

    def resolve_user_id(self, key: str) -> str | None:
        """The id of the user a URL names, remembered until the tenant changes: every Outlook request names its
        mailbox's user, and finding that user otherwise generates the whole user record."""
        seq = self.tenant.current_seq()
        if seq != self._user_ids_seq or len(self._user_ids) >= 65536:
            self._user_ids = {}
            self._user_ids_seq = seq
        if key in self._user_ids:
            return self._user_ids[key]
        user = self.resolve_user(key)
        found = self._user_ids[key] = str(user["id"]) if user is not None else None
        return found

    def mailbox_key(self, user_key: str) -> str:
        """One throttling key per mailbox, whether a URL names it by id or by userPrincipalName."""
        if "@" not in user_key:  # an id: already the key (no record generated on this hot path)
            return user_key.lower()
        user_id = self.resolve_user_id(user_key)
        return user_id.lower() if user_id is not None else user_key.lower()

    # --- pipeline ---------------------------------------------------------------------------------------------
    async def handle(self, req: GraphRequest, fault: FaultDecision = NO_FAULT) -> GraphResponse:
        try:
            claims = self._authenticate(req)
            if fault.status:
                headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after else {}
                if fault.status == 503:
                    raise GraphError(503, "serviceNotAvailable", "The service is temporarily unavailable for "
                                     "maintenance or is overloaded. You may repeat the request after a delay, "
                                     "which may be specified in a Retry-After header.", headers=headers)
                raise GraphError(504, "UnknownError", "The gateway timed out waiting for the backend.")
            if req.method not in ("GET", "HEAD"):
                raise GraphError(405, "Request_BadRequest",
                                 "Specified HTTP method is not allowed for the request target.")
            try:
                ep, keys, _ = endpoints.route(req.raw_path)
            except endpoints.RouteError:
                raise GraphError(400, "BadRequest",
                                 f"Resource not found for the segment '{_last_segment(req.raw_path)}'.") from None
        except GraphError as err:
            return error_response(req, err)
        try:
            return await self._dispatch(req, ep, keys, claims, fault)
        except GraphError as err:
            response = error_response(req, err, ep.name)
            if ep.family == "directory":  # the directory reports the RU charge on errors too (json-batching.md)
                response.headers.setdefault("x-ms-resource-unit", "1")
            return response
        except Exception:
            # Graph answers its own bugs with a 500 in its error envelope; keep the traceback for the stack log.
            log.exception("graph emulator failure on %s %s", req.method, req.raw_path)
            return error_response(req, GraphError(500, "UnknownError", "An internal server error occurred."), ep.name)

    def authenticate(self, req: GraphRequest) -> dict[str, Any] | GraphError:
        """The claims of the request's token, or the 401 it earns (for `GraphRequest.auth`)."""
        try:
            return self._authenticate(req)
        except GraphError as err:
            return err

    def _authenticate(self, req: GraphRequest) -> dict[str, Any]:
        if req.auth is not None:
            if isinstance(req.auth, GraphError):
                raise req.auth
            return req.auth
        header = req.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        challenge = {
            "WWW-Authenticate": f'Bearer realm="", authorization_uri="{self.settings.authority_url.rstrip("/")}'
            f'/common/oauth2/authorize", client_id="{GRAPH_FIRST_PARTY_APP}"'
        }
        if not token or scheme.lower() != "bearer":
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.", headers=challenge)
        try:
            claims = self.verifier.verify(token.strip(), GRAPH_RESOURCE)
        except InvalidToken as exc:
            message = {
                InvalidToken.EXPIRED: "Lifetime validation failed, the token is expired.",
                InvalidToken.NOT_YET_VALID: "Lifetime validation failed, the token is not yet valid.",
                InvalidToken.WRONG_AUDIENCE: "Access token validation failure. Invalid audience.",
                InvalidToken.WRONG_ISSUER: "Access token validation failure. Invalid issuer.",
                InvalidToken.BAD_SIGNATURE: "Access token validation failure. Invalid signature.",
            }.get(exc.reason, "IDX14100: JWT is not well formed, there are no dots (.).")
            raise GraphError(401, "InvalidAuthenticationToken", message, headers=challenge) from None
        if claims.get("tid") != self.tenant.tenant_id:
            raise GraphError(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid issuer.",
                             headers=challenge)
        return claims

    async def _dispatch(
        self, req: GraphRequest, ep: Endpoint, keys: tuple[str, ...], claims: dict[str, Any], fault: FaultDecision
    ) -> GraphResponse:
        roles = claims.get("roles") or []
        if ep.name == "chats_all":
            # GET /chats lists the signed-in user's chats: there is no user in an app-only token.
            raise GraphError(412, "PreconditionFailed", "Requested API is not supported in application-only context")
        if not permissions.allowed(ep.name, roles):
            raise self._permission_error(ep, roles)
        opts = query.parse_options(ep, req.query, req.headers)
        app_id = str(claims.get("appid") or claims.get("azp") or "")
        treq = self._throttle_request(ep, keys, opts, app_id, str(claims.get("tid")))
        decision = self.throttle.admit(treq)
        if not decision.allowed:
            return self._throttled(req, ep, decision)
        try:
            if fault.delay_seconds:
                # Latency is service time: it is spent while holding Outlook's concurrency slot, like real work.
                await asyncio.sleep(fault.delay_seconds)
            response = self._serve(req, ep, keys, opts, roles, fault)
        finally:
            if ep.family == "outlook":
                self.throttle.release(treq)
        if decision.resource_units is not None:
            response.headers["x-ms-resource-unit"] = str(decision.resource_units)
        if decision.limit_percentage is not None:
            response.headers["x-ms-throttle-limit-percentage"] = f"{decision.limit_percentage:.1f}"
        return response

    def _permission_error(self, ep: Endpoint, roles: list[str]) -> GraphError:
        if ep.family == "outlook":
            return GraphError(403, "ErrorAccessDenied", permissions_message_outlook(), inner_error=False)
        if ep.family == "teams":
            return GraphError(403, "Forbidden", "Missing role permissions on the request. API requires one of "
                              f"'{', '.join(permissions.PERMISSIONS[ep.name])}'. Roles on the request "
                              f"'{', '.join(roles)}'.")
        if ep.family == "drive":
            return GraphError(403, "accessDenied", "Access denied")
        if ep.family == "ca":
            return GraphError(403, "AccessDenied",
                              "You cannot perform the requested operation, required scopes are missing in the token.")
        return GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")

    def _throttle_request(
        self, ep: Endpoint, keys: tuple[str, ...], opts: query.Options, app_id: str, tenant_id: str
    ) -> ThrottleRequest:
        if ep.family == "directory":
            cost = directory_cost(ep.cost, select=opts.select is not None, top=opts.top, expand=bool(opts.expand))
            return ThrottleRequest(app_id, tenant_id, "directory", cost=cost)
        if ep.family == "outlook":
            return ThrottleRequest(app_id, tenant_id, "outlook", mailbox=self.mailbox_key(keys[0]))
        if ep.family == "teams":
            return ThrottleRequest(app_id, tenant_id, "teams", teams_class=ep.teams_resource,
                                   resource_id=keys[0].lower() if keys else None)
        return ThrottleRequest(app_id, tenant_id, ep.family)

    def _throttled(self, req: GraphRequest, ep: Endpoint, decision: Any) -> GraphResponse:
        headers: dict[str, str] = {}
        if decision.retry_after is not None and self.settings.throttle.retry_after:
            headers["Retry-After"] = format_retry_after(decision.retry_after, self.settings.throttle.scale)
        if decision.throttle_scope_header:
            headers["x-ms-throttle-scope"] = decision.throttle_scope_header
        if decision.throttle_info_header:
            headers["x-ms-throttle-information"] = decision.throttle_info_header
        if decision.resource_units is not None:
            headers["x-ms-resource-unit"] = str(decision.resource_units)
        date = graph_date()
        if decision.code == "TooManyRequests":
            body: dict[str, Any] = {"error": {
                "code": "TooManyRequests",
                "innerError": {"code": "429", "date": date, "message": "Please retry after",
                               "request-id": req.request_id, "status": "429",
                               "client-request-id": req.client_request_id},
                "message": decision.message,
            }}
        else:
            body = {"error": {"code": decision.code, "message": decision.message}}
        return GraphResponse(429, body, headers, ep.name, decision.scope)

    # --- resolution -------------------------------------------------------------------------------------------
    def _resolve(self, ep: Endpoint, keys: tuple[str, ...], include_hidden: bool = False) -> _Target:
        user_id: str | None = None
        if ep.user_key is not None:
            user_id = self.resolve_user_id(keys[ep.user_key])
            if user_id is None:
                if ep.family == "outlook":
                    raise GraphError(404, "ErrorInvalidUser", f"The requested user '{keys[ep.user_key]}' is invalid.")
                raise _directory_404(keys[ep.user_key])
            if ep.family == "outlook":
                state = self.tenant.mailbox_state(user_id)
                if state == "no_mailbox":
                    raise GraphError(404, "MailboxNotEnabledForRESTAPI",
                                     "The mailbox is either inactive, soft-deleted, or is hosted on-premise.")
                if state == "access_denied":
                    raise GraphError(403, "ErrorAccessDenied", permissions_message_outlook(), inner_error=False)
            if ep.family == "drive" and not self.tenant.has_onedrive(user_id):
                raise GraphError(404, "ResourceNotFound", "User's mysite not found.")
        parents = tuple(user_id if i == ep.user_key and user_id else k for i, k in enumerate(keys))
        if ep.kind == "folderMessages" and user_id and keys[1].lower() in WELL_KNOWN_MAIL_FOLDERS:
            parents = (user_id, self._well_known_folder(user_id, keys[1]))
        name = ep.name
        if name == "user":
            users = self._need(self.tenant.collection("users"), ep, keys[0])
            record = self.resolve_user(keys[0])
            if record is None:
                raise _directory_404(keys[0])
            return _Target(users, record=record)
        if name in ("user_drive", "user_drive_delta"):
            drives = self._need(self.tenant.collection("drives", parents[0]), ep, keys[0])
            first = drives.page(0, 1)
            if not first:
                raise GraphError(404, "ResourceNotFound", "User's mysite not found.")
            if name == "user_drive":
                return _Target(drives, record=first[0], user_id=user_id)
            drive_id = str(first[0]["id"])
            items = self._need(self.tenant.collection("driveItems", drive_id), ep, drive_id)
            return _Target(items, parent_ids=(drive_id,), user_id=user_id)
        if name == "teams":
            groups = self._need(self.tenant.collection("groups"), ep, "")
            return _Target(groups, predicate=_is_team)
        if name in ("mail_folders", "mail_folder", "mail_child_folders", "contact_folders", "contact_child_folders"):
            return self._folders(ep, keys, parents, user_id or "", include_hidden)
        if name == "group_transitive_members":
            return _Target(self._transitive_members(ep, keys[0]), parent_ids=(keys[0],))
        if name in ("user_all_chat_messages", "user_all_chat_messages_delta"):
            chats = self._need(self.tenant.collection("chats", parents[0]), ep, keys[0])
            parts = [c for c in (self.tenant.collection("chatMessages", str(ch["id"])) for ch in chats.iter_from(0))
                     if c is not None]
            return _Target(paging.ChainCollection("chatMessages", parts), parent_ids=parents, user_id=user_id)
        if name in ("drive_children", "drive_root_children"):
            items = self._need(self.tenant.collection("driveItems", keys[0]), ep, keys[0])
            if name == "drive_root_children" or keys[1].lower() == "root":
                root = next((r for r in items.iter_from(0) if "root" in r), None)
                parent_id = str(root["id"]) if root else ""
            else:
                parent = items.get(keys[1])
                if parent is None:
                    raise GraphError(404, "itemNotFound", "Item not found")
                parent_id = keys[1]
            return _Target(items, predicate=_child_of(parent_id), parent_ids=(keys[0],))
        assert ep.kind is not None
        coll = self._need(self.tenant.collection(ep.kind, *parents), ep, keys[-1] if keys else "")  # type: ignore[arg-type]
        if ep.newest_first:
            coll = paging.ReversedCollection(coll)
        return _Target(coll, parent_ids=parents, user_id=user_id)

    def _check_child_steps(self, ep: Endpoint, keys: tuple[str, ...], raw_path: str) -> None:
        """In `mailFolders/{a}/childFolders/{b}` folder b must be a child of a, as Graph looks b up among a's
        children."""
        _, _, steps = endpoints.route(raw_path)
        if not steps or ep.user_key is None:
            return
        user_id = self.resolve_user_id(keys[ep.user_key])
        if user_id is None:
            return  # _resolve answers the missing user
        mail = ep.kind in ("mailFolders", "folderMessages")
        folders = self.tenant.collection("mailFolders" if mail else "contactFolders", user_id)
        for parent, child in steps:
            if mail and parent.lower() in WELL_KNOWN_MAIL_FOLDERS:
                parent = self._well_known_folder(user_id, parent)
            found = folders.get(child) if folders is not None else None
            if found is None or found.get("parentFolderId") != parent:
                raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")

    def _folders(self, ep: Endpoint, keys: tuple[str, ...], parents: tuple[str, ...], user_id: str,
                 include_hidden: bool) -> _Target:
        """Folder lists over the mailbox's whole folder collection: `/mailFolders` and `/contactFolders` are the
        top level (folders whose parent is not itself listed: the mailbox root, or the default Contacts folder),
        `childFolders` one folder's children. Hidden mail folders only with `includeHiddenFolders=true`."""
        mail = ep.kind == "mailFolders"
        coll = self._need(self.tenant.collection("mailFolders" if mail else "contactFolders", user_id), ep, keys[0])
        show_hidden = include_hidden or not mail

        def visible(record: Mapping[str, Any]) -> bool:
            return show_hidden or not record.get("isHidden")

        if ep.name in ("mail_folders", "contact_folders") or keys[1].lower() == "msgfolderroot":
            listed = {str(r["id"]) for r in coll.iter_from(0)}

            def top_level(record: Mapping[str, Any]) -> bool:
                return visible(record) and str(record.get("parentFolderId")) not in listed

            return _Target(coll, predicate=top_level, parent_ids=(user_id,), user_id=user_id)
        folder_id = keys[1]
        if mail and folder_id.lower() in WELL_KNOWN_MAIL_FOLDERS:
            folder_id = self._well_known_folder(user_id, folder_id)
        known = coll.get(folder_id) is not None or (
            not mail and self.tenant.collection("folderContacts", user_id, folder_id) is not None)
        if not known:
            raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        if ep.single:
            record = coll.get(folder_id)
            assert record is not None
            return _Target(coll, record=record, parent_ids=(user_id,), user_id=user_id)

        def child(record: Mapping[str, Any]) -> bool:
            return visible(record) and record.get("parentFolderId") == folder_id

        return _Target(coll, predicate=child, parent_ids=(user_id,), user_id=user_id)

    def _well_known_folder(self, user_id: str, name: str) -> str:
        """`mailFolders/inbox` etc.: Graph's well-known folder names resolve to the mailbox's folder id."""
        display = WELL_KNOWN_MAIL_FOLDERS[name.lower()]
        folders = self.tenant.collection("mailFolders", user_id)
        found = next((f for f in folders.iter_from(0) if f.get("displayName") == display), None) if folders else None
        return str(found["id"]) if found else name

    def _need(self, coll: Collection | None, ep: Endpoint, key: str) -> Collection:
        if coll is not None:
            return coll
        if ep.family == "outlook":
            raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        if ep.family == "teams":
            if ep.name.startswith("chat"):
                raise GraphError(404, "NotFound", f"Chat '{key}' was not found.")
            raise GraphError(404, "NotFound", f"No team found with Group Id {key}")
        if ep.family == "drive":
            raise GraphError(404, "itemNotFound", "The resource could not be found.")
        raise _directory_404(key)

    def _transitive_members(self, ep: Endpoint, group_id: str) -> Collection:
        self._need(self.tenant.collection("groupMembers", group_id), ep, group_id)
        seen: set[str] = set()
        out: list[Record] = []
        stack = [group_id]
        visited_groups = {group_id}
        while stack:
            members = self.tenant.collection("groupMembers", stack.pop(0))
            if members is None:
                continue
            for member in members.iter_from(0):
                mid = str(member.get("id"))
                if mid not in seen:
                    seen.add(mid)
                    out.append(member)
                if member.get("@odata.type") == "#microsoft.graph.group" and mid not in visited_groups:
                    visited_groups.add(mid)
                    stack.append(mid)
        return paging.ListCollection("groupMembers", out)

    # --- serving ----------------------------------------------------------------------------------------------
    def _serve(
        self, req: GraphRequest, ep: Endpoint, keys: tuple[str, ...], opts: query.Options, roles: list[str],
        fault: FaultDecision,
    ) -> GraphResponse:
        include_hidden = any(k.lower() == "includehiddenfolders" and v.lower() == "true" for k, v in opts.extra.items())
        self._check_child_steps(ep, keys, req.raw_path)
        target = self._resolve(ep, keys, include_hidden)
        hidden = permissions.hidden_properties(ep.name, roles)
        if ep.delta is not None:
            return serve_delta(self, req, ep, keys, opts, target.coll, target.parent_ids, hidden, fault)
        if ep.single:
            assert target.record is not None
            if opts.select:
                query.check_select(ep, opts.select, target.record)
            body = {"@odata.context": self.context_url(req, ep, keys, opts.select)}
            body.update(query.project(target.record, opts.select, default=ep.default_select, hidden=hidden))
            return GraphResponse(200, body, endpoint=ep.name)
        return self._serve_list(req, ep, keys, opts, target, hidden, fault)

    def _serve_list(
        self, req: GraphRequest, ep: Endpoint, keys: tuple[str, ...], opts: query.Options, target: _Target,
        hidden: frozenset[str], fault: FaultDecision,
    ) -> GraphResponse:
        coll = target.coll
        assert coll is not None
        if opts.select:
            sample = coll.page(0, 1)
            query.check_select(ep, opts.select, sample[0] if sample else None)
        signature = cursors.query_signature(req.raw_path, req.query)
        start = 0
        if ep.paging.style == "skiptoken" and opts.skiptoken:
            try:
                start = self.codec.open_skiptoken(opts.skiptoken, signature)
            except cursors.BadToken:
                if ep.family == "directory":
                    raise GraphError(400, "Directory_ExpiredPageToken", "The specified page token value has "
                                     "expired and can no longer be included in your request.") from None
                raise GraphError(400, "BadRequest", "The skip token is invalid or has expired.") from None
        elif ep.paging.style == "skip":
            start = opts.skip
        top = query.effective_top(ep, opts.top)
        preferred = _max_page_size(req.headers) if ep.family == "outlook" and opts.top is None else None
        if preferred is not None:
            top = query.effective_top(ep, preferred)
        extra = target.predicate
        if ep.window_required and opts.start and opts.end:
            window_start, window_end = opts.start, opts.end
            base_extra = extra

            def in_window(r: Mapping[str, Any]) -> bool:
                return (base_extra is None or base_extra(r)) and query.window_overlaps(r, window_start, window_end)

            extra = in_window
        filter_node = opts.filter
        if ep.filter_needs_orderby and filter_node is not None:
            # chat-list-messages.md: the filter must be on the $orderby property, else Graph silently ignores it.
            ordered = {p.lower() for p, _ in opts.orderby}
            if not ordered or not {p.lower() for p in odata_filter.root_properties(filter_node)} <= ordered:
                filter_node = None
        predicate = paging.matcher(filter_node, extra)
        first_page = start == 0 and not opts.skiptoken
        if fault.empty_page and ep.paging.style != "none" and coll.count() > 0:
            result = paging.PageResult([], start)
        else:
            result = paging.compute_page(
                coll, start=start, top=top, predicate=predicate, orderby=opts.orderby,
                skip_counts_matches=ep.paging.style == "skip", want_count=opts.count and first_page,
            )
        always = ("id",) if ep.family == "outlook" else ()
        projector = query.Projector(opts.select, default=ep.default_select, always=always, hidden=hidden)
        values = [projector(r) for r in result.records]
        body: dict[str, Any] = {"@odata.context": self.context_url(req, ep, keys, opts.select)}
        if result.count is not None:
            body["@odata.count"] = result.count
        next_link = None
        if result.next_start is not None:
            next_link = self.next_link(req, ep, result.next_start, signature)
        if next_link and ep.family != "outlook":
            body["@odata.nextLink"] = next_link
        body["value"] = values
        if next_link and ep.family == "outlook":
            body["@odata.nextLink"] = next_link
        response = GraphResponse(200, body, endpoint=ep.name)
        if preferred is not None:
            response.headers["Preference-Applied"] = f"odata.maxpagesize={top}"
        return response

    # --- links ------------------------------------------------------------------------------------------------
    def base(self, req: GraphRequest) -> str:
        return (self.settings.public_base_url or req.base_url).rstrip("/")

    def context_url(self, req: GraphRequest, ep: Endpoint, keys: tuple[str, ...], select: tuple[str, ...] | None
                    ) -> str:
        fragment = ep.context.format(*(k.replace("'", "''") for k in keys))
        if select and not fragment.startswith("Collection("):
            cols = ",".join(select)
            if fragment.endswith("/$entity"):
                fragment = f"{fragment[:-len('/$entity')]}({cols})/$entity"
            else:
                fragment = f"{fragment}({cols})"
        return f"{self.base(req)}/v1.0/$metadata#{fragment}"

    def next_link(self, req: GraphRequest, ep: Endpoint, next_start: int, signature: str) -> str:
        if ep.paging.style == "skip":
            params = [(k, v) for k, v in req.query if k.lower() not in ("$skip", "skip")]
            params.append(("$skip", str(next_start)))
            qs = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params)
        else:
            params = [(k, v) for k, v in req.query if k.lower() not in ("$skiptoken", "skiptoken")]
            params.append(("$skiptoken", self.codec.skiptoken(next_start, signature)))
            qs = "&".join(f"{quote(k, safe='$')}={quote(v, safe=_LINK_SAFE)}" for k, v in params)
        return f"{self.base(req)}/v1.0{req.raw_path}?{qs}"


def _max_page_size(headers: Mapping[str, str]) -> int | None:
    """`Prefer: odata.maxpagesize=N`, which Outlook honours when `$top` is absent."""
    for part in headers.get("Prefer", "").split(","):
        name, _, value = part.strip().partition("=")
        if name.lower() == "odata.maxpagesize" and value.strip().isdigit() and int(value) > 0:
            return int(value)
    return None


def permissions_message_outlook() -> str:
    return "Access is denied. Check credentials and try again."


def _directory_404(key: str) -> GraphError:
    return GraphError(404, "Request_ResourceNotFound", f"Resource '{key}' does not exist or one of its queried "
                      "reference-property objects are not present.")


def _last_segment(raw_path: str) -> str:
    segs = [s for s in raw_path.split("/") if s]
    return segs[-1] if segs else raw_path


def _is_team(record: Mapping[str, Any]) -> bool:
    options = record.get("resourceProvisioningOptions") or []
    return isinstance(options, list) and "Team" in options


def _child_of(parent_id: str) -> paging.Predicate:
    def predicate(record: Mapping[str, Any]) -> bool:
        ref = record.get("parentReference") or {}
        return isinstance(ref, Mapping) and ref.get("id") == parent_id and "root" not in record

    return predicate
