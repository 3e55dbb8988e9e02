"""Opaque, signed paging and delta tokens, and the per-partition epochs that expire delta tokens.

Graph's `$skiptoken`/`$deltatoken` are opaque to clients and encode the original query; these do the same
(base64url of JSON + an HMAC). The HMAC key and the epochs live under the state dir so tokens handed out before
a restart keep working after it, and an admin "expire" bumps an epoch so older tokens answer 410 Gone.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
from pathlib import Path
from typing import Any

import orjson

_SKIP_MAGIC = b"DSpt\x02\x00\x01\x00"  # Graph's directory skiptokens start with these bytes ("RFNwdAIAAQA...")
_DELTA_MAGIC = b"DLta"
_MAC_BYTES = 16


class BadToken(ValueError):
    """A token that is malformed, forged or issued for a different query."""


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise BadToken("not base64url") from exc


class TokenCodec:
    """Signs and opens token payloads with one secret key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def load_or_create(cls, state_dir: Path | None) -> TokenCodec:
        if state_dir is None:
            return cls(secrets.token_bytes(32))
        path = state_dir / "graph-token-key.bin"
        if path.exists():
            return cls(path.read_bytes())
        state_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_bytes(32)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(key)
        tmp.chmod(0o600)
        tmp.replace(path)
        return cls(key)

    def _seal(self, magic: bytes, payload: dict[str, Any]) -> str:
        body = magic + orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
        mac = hmac.new(self._key, body, hashlib.sha256).digest()[:_MAC_BYTES]
        return _b64e(body + mac)

    def _open(self, magic: bytes, token: str) -> dict[str, Any]:
        raw = _b64d(token)
        body, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if not body.startswith(magic):
            raise BadToken("wrong token type")
        expected = hmac.new(self._key, body, hashlib.sha256).digest()[:_MAC_BYTES]
        if not hmac.compare_digest(mac, expected):
            raise BadToken("signature mismatch")
        try:
            payload = orjson.loads(body[len(magic):])
        except orjson.JSONDecodeError as exc:
            raise BadToken("not JSON") from exc
        if not isinstance(payload, dict):
            raise BadToken("not an object")
        return payload

    def skiptoken(self, offset: int, signature: str) -> str:
        return self._seal(_SKIP_MAGIC, {"o": offset, "q": signature})

    def open_skiptoken(self, token: str, signature: str) -> int:
        payload = self._open(_SKIP_MAGIC, token)
        offset = payload.get("o")
        if payload.get("q") != signature or not isinstance(offset, int) or offset < 0:
            raise BadToken("token belongs to a different query")
        return offset

    def delta(self, payload: dict[str, Any]) -> str:
        return self._seal(_DELTA_MAGIC, payload)

    def open_delta(self, token: str) -> dict[str, Any]:
        return self._open(_DELTA_MAGIC, token)


def query_signature(path: str, params: list[tuple[str, str]]) -> str:
    """A short digest of the request minus its page cursor: a skiptoken is only valid for the same query."""
    keep = sorted((k.lower(), v) for k, v in params if k.lower() not in ("$skiptoken", "$skip"))
    digest = hashlib.sha256(json.dumps([path.lower(), keep]).encode()).digest()
    return _b64e(digest[:9])


class DeltaEpochs:
    """Generation counters: a delta token is valid while the epochs it recorded are still current."""

    def __init__(self, state_dir: Path | None) -> None:
        self._path = state_dir / "graph-delta-epochs.json" if state_dir else None
        self._lock = threading.Lock()
        self.global_epoch = 0
        self.partitions: dict[str, int] = {}
        if self._path and self._path.exists():
            data = json.loads(self._path.read_text())
            self.global_epoch = int(data.get("global", 0))
            self.partitions = {str(k): int(v) for k, v in data.get("partitions", {}).items()}

    @staticmethod
    def partition_key(kind: str, parent_ids: tuple[str, ...] | list[str]) -> str:
        return "|".join([kind, *parent_ids])

    def current(self, partition: str) -> tuple[int, int]:
        return self.global_epoch, self.partitions.get(partition, 0)

    def expire_all(self) -> None:
        with self._lock:
            self.global_epoch += 1
            self._save()

    def expire(self, partition: str) -> None:
        with self._lock:
            self.partitions[partition] = self.partitions.get(partition, 0) + 1
            self._save()

    def _save(self) -> None:
        if self._path is None:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_name(f"{self._path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"global": self.global_epoch, "partitions": self.partitions}))
        tmp.replace(self._path)
