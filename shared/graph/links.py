"""Which URLs may receive the bearer token: only those under the configured Graph version root.

nextLinks are opaque and followed verbatim, but a link on another host, scheme, port or API version (a poisoned
or buggy response) would hand the token to someone else. The same parsed `yarl.URL` that is checked is the one
requested, so the check and the HTTP client can never disagree about the host.
"""

from __future__ import annotations

from urllib.parse import unquote

import yarl


class OffHostLinkError(Exception):
    """A link outside the Graph root; the message shows scheme/host/path only (a query may hold tokens)."""

    code = "OffHostNextLink"


def _port(url: yarl.URL) -> int | None:
    return url.port if url.port is not None else {"https": 443, "http": 80}.get(url.scheme)


def allowed_url(link: str, graph_root: str) -> yarl.URL:
    """`link` parsed, if it lies under `graph_root` (e.g. https://graph.microsoft.com/v1.0); else OffHostLinkError."""
    root = yarl.URL(graph_root, encoded=True)
    try:
        url = yarl.URL(link, encoded=True)
    except (ValueError, TypeError) as exc:
        raise OffHostLinkError(f"refused an unparseable link ({exc})") from None
    where = f"{url.scheme}://{url.host}:{_port(url)}{url.raw_path}"
    root_path = root.raw_path.rstrip("/") + "/"
    segments = [unquote(s) for s in url.raw_path.split("/")]
    problems = []
    if url.scheme.lower() != root.scheme.lower():
        problems.append("scheme")
    if (url.host or "").lower() != (root.host or "").lower() or url.user is not None or url.password is not None:
        problems.append("host")
    if _port(url) != _port(root):
        problems.append("port")
    if not url.raw_path.startswith(root_path) or any(s in (".", "..") for s in segments):
        problems.append("version root")
    if problems:
        raise OffHostLinkError(f"refused a link outside {graph_root} ({', '.join(problems)} differ): {where}")
    return url
