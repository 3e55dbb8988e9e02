"""Record shaping: snake_case names, injected parent key, tenant id and extraction time. Pure."""

from __future__ import annotations

import re
from functools import lru_cache
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

    def shape(self, record: dict[str, Any]) -> dict[str, Any]:
        out = _snake_value(record) if self._snake else dict(record)
        out.update(self._extra)
        return out

    def jsonl(self, records: list[dict[str, Any]]) -> bytes:
        """One page as JSON Lines (UTF-8, no ASCII escaping)."""
        return b"".join(orjson.dumps(self.shape(r)) + b"\n" for r in records)
