"""Graph client: paging, retries, error classification, host allow-list."""

from shared.graph.client import GraphClient, GraphRequestError, Page, RequestStats, make_session
from shared.graph.errors import Action, Decision, GraphErrorBody, classify, parse_error_body, permission_hint
from shared.graph.links import OffHostLinkError, allowed_url
from shared.graph.retry import RetryPolicy, parse_retry_after

__all__ = [
    "Action", "Decision", "GraphClient", "GraphErrorBody", "GraphRequestError", "OffHostLinkError", "Page",
    "RequestStats", "RetryPolicy", "allowed_url", "classify", "make_session", "parse_error_body", "parse_retry_after",
    "permission_hint",
]
