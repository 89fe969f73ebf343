"""API keys: created, listed and revoked with `km keys`, checked on every request with KM_AUTH=keys.

Only a SHA-256 hash of each key is stored. A key is `km_` plus 32 random bytes (URL-safe base64),
so a fast hash is enough: there is nothing to guess. Lookup is by the hash's first 16 hex digits
(an index), the full hash is compared in constant time. One SQLite file (KM_KEYS_FILE, else
<KM_INDEX_DIR>/keys.sqlite) shared by every index and by `km serve` and `km keys` at the same time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from km_search.access.principals import ROLES, Principal, normalize_groups
from km_search.errors import KeyNotFound
from km_search.sqlitedb import open_shared

PREFIX = "km_"
_LAST_USED_EVERY_S = 60  # last_used is written at most this often per key

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    groups TEXT NOT NULL,        -- JSON list
    lookup TEXT NOT NULL,        -- first 16 hex digits of the hash
    hash TEXT NOT NULL,          -- sha256 of the key, hex
    created TEXT NOT NULL,
    revoked_at TEXT,
    last_used TEXT
);
CREATE INDEX IF NOT EXISTS api_keys_lookup ON api_keys(lookup);
"""



@dataclass(frozen=True)
class KeyInfo:
    """What `km keys list` shows: everything but the key, which is never stored."""

    id: int
    name: str
    role: str
    groups: tuple[str, ...]
    created: str
    revoked_at: str | None
    last_used: str | None

    def to_json(self) -> dict:
        return {"id": self.id, "name": self.name, "role": self.role, "groups": list(self.groups),
                "created": self.created, "revoked_at": self.revoked_at, "last_used": self.last_used}


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class KeyStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._local = threading.local()
        self._last_used: dict[int, float] = {}

    def _db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = open_shared(self.path, SCHEMA)
        return conn

    def create(self, role: str, groups: str | list[str] | tuple[str, ...] = (), name: str = "") -> tuple[str, KeyInfo]:
        """A new key (returned once, never stored) and what is stored about it."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        group_names = normalize_groups(groups)
        key = PREFIX + secrets.token_urlsafe(32)
        digest = key_hash(key)
        created = _now()
        cur = self._db().execute(
            "INSERT INTO api_keys (name, role, groups, lookup, hash, created) VALUES (?,?,?,?,?,?)",
            (name or f"{role} key", role, json.dumps(list(group_names)), digest[:16], digest, created),
        )
        return key, KeyInfo(int(cur.lastrowid), name or f"{role} key", role, group_names, created, None, None)

    def empty(self) -> bool:
        """No key was ever created (a revoked key still counts: someone chose keys)."""
        return self._db().execute("SELECT 1 FROM api_keys LIMIT 1").fetchone() is None

    def all(self) -> list[KeyInfo]:
        rows = self._db().execute("SELECT * FROM api_keys ORDER BY id").fetchall()
        return [self._info(r) for r in rows]

    def revoke(self, key_id: int) -> KeyInfo:
        """Refuse the key from now on (the row stays, for the record); revoking twice is harmless."""
        db = self._db()
        db.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (_now(), key_id))
        row = db.execute("SELECT * FROM api_keys WHERE id = ?", (key_id,)).fetchone()
        if row is None:
            raise KeyNotFound(f"no API key with id {key_id}: `km keys list` shows them")
        return self._info(row)

    def authenticate(self, key: str) -> Principal | None:
        """The principal of a valid, unrevoked key; None for anything else."""
        if not key or not key.startswith(PREFIX) or len(key) > 200:
            return None
        digest = key_hash(key)
        rows = self._db().execute(
            "SELECT * FROM api_keys WHERE lookup = ? AND revoked_at IS NULL", (digest[:16],)
        ).fetchall()
        for row in rows:
            if hmac.compare_digest(row["hash"], digest):
                self._touch(row["id"])
                info = self._info(row)
                return Principal(id=f"key:{info.id}", name=info.name, role=info.role,  # type: ignore[arg-type]
                                 groups=info.groups)
        return None

    def _touch(self, key_id: int) -> None:
        now = time.monotonic()
        if now - self._last_used.get(key_id, -1e9) < _LAST_USED_EVERY_S:
            return
        self._last_used[key_id] = now
        try:
            self._db().execute("UPDATE api_keys SET last_used = ? WHERE id = ?", (_now(), key_id))
        except sqlite3.Error:  # a busy keys file must not refuse a valid key
            pass

    @staticmethod
    def _info(row: sqlite3.Row) -> KeyInfo:
        return KeyInfo(row["id"], row["name"], row["role"], tuple(json.loads(row["groups"])), row["created"],
                       row["revoked_at"], row["last_used"])
