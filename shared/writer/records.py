"""Record shaping: snake_case names, injected parent key, tenant id and extraction time. Pure."""

from __future__ import annotations

import re
from functools import lru_cache
from itertools import repeat
from typing import Any

import orjson

_BOUNDARY_1 = re.compile(r"([A-Z]+)([A-Z][a-z])")
_BOUNDARY_2 = re.compile(r"([a-z0-9])([A-Z])")


@lru_cache(maxsize=4096)
def snake(name: str) -> str:
    """userPrincipalName -> user_principal_name; @odata.type -> odata_type; already-snake names unchanged."""
    text = name.lstrip("@").replace(".", "_").replace("-", "_")
    text = _BOUNDARY_1.sub(r"\1_\2", text)
    text = _BOUNDARY_2.sub(r"\1_\2", text)
    return text.lower()


def _snake_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {snake(k): _snake_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_snake_value(v) for v in value]
    return value


class RecordShaper:
    """Shapes the records of one partition; the injected columns win over a Graph field of the same name."""

    def __init__(self, *, tenant_id: str, extracted_at: str, snake_case: bool,
                 parent_key: str | None = None, parent_id: str | None = None) -> None:
        self._snake = snake_case
        extra: dict[str, Any] = {}
        if parent_key is not None:
            extra[parent_key] = parent_id
        extra["tenant_id"] = tenant_id
        extra["_extracted_at"] = extracted_at
        self._extra = extra
        self._keys = tuple(extra)
        # `,"tenant_id":"…",…}` + newline: spliced over the closing brace of a record's own JSON, which gives
        # the bytes `shape` + dumps would give (injected columns last) without copying the record.
        self._suffix = b"," + orjson.dumps(extra)[1:] + b"\n"

    def shape(self, record: dict[str, Any]) -> dict[str, Any]:
        out = _snake_value(record) if self._snake else dict(record)
        out.update(self._extra)
        return out

    def jsonl(self, records: list[dict[str, Any]]) -> bytes:
        """One page as JSON Lines (UTF-8, no ASCII escaping).

        Per-record Python work is what limits the engine's CPU per record, so the common case (no renaming,
        no Graph field named like an injected column) is one orjson call per record and one join per page."""
        if self._snake or not records:
            return b"".join([orjson.dumps(self.shape(r), option=orjson.OPT_APPEND_NEWLINE) for r in records])
        keys, dumps, suffix = self._keys, orjson.dumps, self._suffix
        if not all(records) or any(any(map(dict.__contains__, records, repeat(k))) for k in keys):
            # rare (an empty record, a Graph field named like an injected column): `shape` decides who wins
            return b"".join([dumps(self.shape(r), option=orjson.OPT_APPEND_NEWLINE) for r in records])
        return suffix.join([dumps(r)[:-1] for r in records]) + suffix
