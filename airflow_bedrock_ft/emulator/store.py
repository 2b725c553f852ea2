"""Persistence of the emulator's state in a local SQLite file (stdlib ``sqlite3``).

Every resource is one JSON document keyed by (kind, id); trained model weights are blobs.
Writes go through at once, so a restarted emulator finds every job, custom model, tag,
deployment and trained model it had. Without a path the store keeps nothing (the state
then lives only in the backend's memory).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (kind TEXT NOT NULL, id TEXT NOT NULL, doc TEXT NOT NULL,
                                    PRIMARY KEY (kind, id));
CREATE TABLE IF NOT EXISTS blobs (id TEXT PRIMARY KEY, data BLOB NOT NULL);
"""


#: Format of the documents in the file (``PRAGMA user_version``). Version 1 tagged datetimes
#: and bytes as single-key objects that user data could imitate; version 2 escapes user keys.
FORMAT_VERSION = 2


def _encode(value: Any) -> Any:
    """Turn ``value`` into plain JSON data that :func:`_hook` turns back, whatever it holds.

    Datetimes and bytes become ``{"$dt": ...}`` and ``{"$hex": ...}``; every key of a user
    mapping that starts with ``$`` gets one more ``$``, so no user object can look like a tag.
    """
    if isinstance(value, dict):
        return {
            (f"${k}" if isinstance(k, str) and k.startswith("$") else k): _encode(v) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, dt.datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, (bytes, bytearray)):
        return {"$hex": bytes(value).hex()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot store {type(value).__name__}")


def _hook(doc: dict[str, Any]) -> Any:
    if len(doc) == 1:
        if "$dt" in doc:
            return dt.datetime.fromisoformat(doc["$dt"])
        if "$hex" in doc:
            return bytes.fromhex(doc["$hex"])
    return {(k[1:] if k.startswith("$$") else k): v for k, v in doc.items()}


def _legacy_hook(doc: dict[str, Any]) -> Any:
    if len(doc) == 1:
        if "$dt" in doc:
            return dt.datetime.fromisoformat(doc["$dt"])
        if "$hex" in doc:
            return bytes.fromhex(doc["$hex"])
    return doc


def dumps(doc: Any) -> str:
    """JSON text of ``doc``, keeping datetimes and bytes apart from any user data."""
    return json.dumps(_encode(doc), sort_keys=True)


def loads(text: str) -> Any:
    """Inverse of :func:`dumps`."""
    return json.loads(text, object_hook=_hook)


class Store:
    """Write-through document store; a no-op when ``path`` is None.

    :param path: the SQLite file; created with its parent folder when missing.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
            self._migrate()

    def _migrate(self) -> None:
        """Rewrite the documents of an older file in the current format."""
        assert self._db is not None
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version >= FORMAT_VERSION:
            return
        with self._lock:
            rows = self._db.execute("SELECT kind, id, doc FROM objects").fetchall()
            self._db.execute("BEGIN")
            for kind, key, text in rows:
                doc = json.loads(text, object_hook=_legacy_hook)
                self._db.execute(
                    "UPDATE objects SET doc = ? WHERE kind = ? AND id = ?", (dumps(doc), kind, key)
                )
            self._db.execute(f"PRAGMA user_version = {FORMAT_VERSION}")
            self._db.execute("COMMIT")

    @property
    def persistent(self) -> bool:
        """True when the state survives a restart."""
        return self._db is not None

    def put(self, kind: str, key: str, doc: Any) -> None:
        """Insert or replace one document."""
        if self._db is None:
            return
        text = dumps(doc)
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO objects (kind, id, doc) VALUES (?, ?, ?)", (kind, key, text)
            )

    def delete(self, kind: str, key: str) -> None:
        """Remove one document if present."""
        if self._db is None:
            return
        with self._lock:
            self._db.execute("DELETE FROM objects WHERE kind = ? AND id = ?", (kind, key))

    def items(self, kind: str) -> Iterator[tuple[str, Any]]:
        """All (id, document) pairs of ``kind``."""
        if self._db is None:
            return iter(())
        with self._lock:
            rows = self._db.execute("SELECT id, doc FROM objects WHERE kind = ?", (kind,)).fetchall()
        return ((key, loads(text)) for key, text in rows)

    def put_blob(self, key: str, data: bytes) -> None:
        """Store a binary object (trained model weights)."""
        if self._db is None:
            return
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO blobs (id, data) VALUES (?, ?)", (key, data))

    def get_blob(self, key: str) -> bytes | None:
        """The blob ``key``, or None."""
        if self._db is None:
            return None
        with self._lock:
            row = self._db.execute("SELECT data FROM blobs WHERE id = ?", (key,)).fetchone()
        return bytes(row[0]) if row else None

    def delete_blob(self, key: str) -> None:
        """Remove a blob if present."""
        if self._db is None:
            return
        with self._lock:
            self._db.execute("DELETE FROM blobs WHERE id = ?", (key,))

    def clear(self) -> None:
        """Forget everything."""
        if self._db is None:
            return
        with self._lock:
            self._db.execute("DELETE FROM objects")
            self._db.execute("DELETE FROM blobs")

    def close(self) -> None:
        """Close the database file."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
