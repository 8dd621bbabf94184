"""The durable request queue: one SQLite file (standard library) holding every accepted request and result.

Why SQLite and not a list in memory: the issue's promise is that a restart loses no accepted request and no
finished result until it expires. A request row is written (and committed) before ``POST`` answers, so an id a
client holds always exists on disk; results and their image bytes are written in the same transaction that marks
the request done, so a crash never leaves a "done" request without its images. A request that was running when
the process died is put back in the queue on the next start (:meth:`RequestStore.open` — the work is redone,
never lost). Finished requests expire ``result_ttl`` seconds after they finish (fal keeps results about an hour,
fal-queue-api.md §6); queued requests do not expire.

One connection, guarded by a lock, serves the event loop and the worker thread; WAL mode keeps readers (status
polls) from waiting on the writer, and ``synchronous=NORMAL`` in WAL mode survives a process crash (only a power
cut can lose the last transactions).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

QUEUED, RUNNING, DONE = "queued", "running", "done"
# Webhook delivery state of a finished request that asked for one.
WEBHOOK_PENDING, WEBHOOK_SENT, WEBHOOK_FAILED = "pending", "sent", "failed"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    state TEXT NOT NULL,
    input TEXT NOT NULL,
    webhook TEXT,
    base_url TEXT NOT NULL DEFAULT '',
    file_token TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    result TEXT,
    result_status INTEGER,
    error TEXT,
    error_type TEXT,
    logs TEXT,
    inference_time REAL,
    webhook_state TEXT
);
CREATE INDEX IF NOT EXISTS requests_state ON requests (state, seq);
CREATE TABLE IF NOT EXISTS files (
    request_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (request_id, idx)
);
"""


@dataclass(frozen=True)
class Record:
    """One request as stored; ``result`` is the output JSON (or the error body) once ``state`` is done."""

    id: str
    seq: int
    state: str
    input: dict[str, Any]
    webhook: str | None
    base_url: str
    file_token: str
    created: float
    started: float | None
    finished: float | None
    result: Any
    result_status: int | None
    error: str | None
    error_type: str | None
    logs: list[dict[str, Any]]
    inference_time: float | None
    webhook_state: str | None


@dataclass(frozen=True)
class StoredFile:
    """An output image kept for the ``images[].url`` the result points at."""

    content_type: str
    data: bytes


class RequestStore:
    """The queue and the result store; every method is one short transaction (safe from any thread)."""

    def __init__(self, path: str | Path, *, result_ttl: float = 3600.0) -> None:
        self.path = str(path)
        self.result_ttl = result_ttl
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row

    @classmethod
    def open(cls, path: str | Path, *, result_ttl: float = 3600.0) -> RequestStore:
        """Open (or create) the store and recover from the last run: running requests go back to the queue."""
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        store = cls(path, result_ttl=result_ttl)
        with store._lock:
            store._db.execute("PRAGMA journal_mode=WAL")
            store._db.execute("PRAGMA synchronous=NORMAL")
            store._db.executescript(_SCHEMA)
            store._db.execute("UPDATE requests SET state = ?, started = NULL WHERE state = ?", (QUEUED, RUNNING))
        store.purge_expired()
        return store

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- writing ---------------------------------------------------------------------------------------------

    def add(self, input_json: dict[str, Any], *, webhook: str | None = None, base_url: str = "") -> Record:
        """Accept a request: committed before the caller answers the client, so its id survives a crash.

        ``base_url`` is where the client reached us; the webhook payload's image URLs are built from it.
        """
        rid = str(uuid.uuid4())
        with self._lock:
            self._db.execute(
                "INSERT INTO requests (id, state, input, webhook, base_url, file_token, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (rid, QUEUED, json.dumps(input_json), webhook, base_url, secrets.token_urlsafe(16), time.time()))
        record = self.get(rid)
        assert record is not None
        return record

    def claim_next(self) -> Record | None:
        """The oldest queued request, now marked running; None when the queue is empty."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT id FROM requests WHERE state = ? ORDER BY seq LIMIT 1",
                                       (QUEUED,)).fetchone()
                if row is not None:
                    self._db.execute("UPDATE requests SET state = ?, started = ? WHERE id = ?",
                                     (RUNNING, time.time(), row["id"]))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return None if row is None else self.get(row["id"])

    def finish(self, rid: str, *, result: Any, status: int, error: str | None = None, error_type: str | None = None,
               logs: Sequence[dict[str, Any]] = (), inference_time: float | None = None,
               files: Sequence[StoredFile] = ()) -> None:
        """Store the outcome and its files in one transaction; a webhook, if asked for, becomes pending."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "UPDATE requests SET state = ?, finished = ?, result = ?, result_status = ?, error = ?, "
                    "error_type = ?, logs = ?, inference_time = ?, "
                    "webhook_state = CASE WHEN webhook IS NULL THEN NULL ELSE ? END WHERE id = ?",
                    (DONE, time.time(), json.dumps(result), status, error, error_type, json.dumps(list(logs)),
                     inference_time, WEBHOOK_PENDING, rid))
                self._db.executemany(
                    "INSERT OR REPLACE INTO files (request_id, idx, content_type, data) VALUES (?, ?, ?, ?)",
                    [(rid, i, f.content_type, f.data) for i, f in enumerate(files)])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def cancel_queued(self, rid: str, result: Any, status: int) -> bool:
        """Take a request out of the queue (atomically: False when the worker claimed it first)."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE requests SET state = ?, finished = ?, result = ?, result_status = ?, error = ?, "
                "error_type = ?, logs = '[]', webhook_state = CASE WHEN webhook IS NULL THEN NULL ELSE ? END "
                "WHERE id = ? AND state = ?",
                (DONE, time.time(), json.dumps(result), status, "Request cancelled", "request_cancelled",
                 WEBHOOK_PENDING, rid, QUEUED))
            return cur.rowcount == 1

    def set_webhook_state(self, rid: str, state: str) -> None:
        with self._lock:
            self._db.execute("UPDATE requests SET webhook_state = ? WHERE id = ?", (state, rid))

    def purge_expired(self, now: float | None = None) -> int:
        """Forget finished requests older than ``result_ttl``; returns how many went."""
        cutoff = (time.time() if now is None else now) - self.result_ttl
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                ids = [r["id"] for r in self._db.execute(
                    "SELECT id FROM requests WHERE state = ? AND finished < ?", (DONE, cutoff))]
                self._db.executemany("DELETE FROM files WHERE request_id = ?", [(i,) for i in ids])
                self._db.executemany("DELETE FROM requests WHERE id = ?", [(i,) for i in ids])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return len(ids)

    # -- reading ---------------------------------------------------------------------------------------------

    def get(self, rid: str) -> Record | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM requests WHERE id = ?", (rid,)).fetchone()
        return None if row is None else _record(row)

    def position(self, record: Record) -> int:
        """Requests ahead of a queued one (fal's ``queue_position``: 0 = next to run)."""
        with self._lock:
            row = self._db.execute("SELECT COUNT(*) FROM requests WHERE state = ? AND seq < ?",
                                   (QUEUED, record.seq)).fetchone()
        return int(row[0])

    def count(self, state: str) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM requests WHERE state = ?", (state,)).fetchone()[0])

    def get_file(self, rid: str, index: int) -> StoredFile | None:
        with self._lock:
            row = self._db.execute("SELECT content_type, data FROM files WHERE request_id = ? AND idx = ?",
                                   (rid, index)).fetchone()
        return None if row is None else StoredFile(row["content_type"], bytes(row["data"]))

    def pending_webhooks(self) -> list[Record]:
        """Finished requests whose webhook was not delivered yet (e.g. the server stopped while retrying)."""
        with self._lock:
            ids = [r["id"] for r in self._db.execute(
                "SELECT id FROM requests WHERE state = ? AND webhook_state = ? ORDER BY seq", (DONE, WEBHOOK_PENDING))]
        return [r for r in (self.get(i) for i in ids) if r is not None]


def _record(row: sqlite3.Row) -> Record:
    return Record(
        id=row["id"], seq=row["seq"], state=row["state"], input=json.loads(row["input"]), webhook=row["webhook"],
        base_url=row["base_url"], file_token=row["file_token"], created=row["created"], started=row["started"],
        finished=row["finished"],
        result=None if row["result"] is None else json.loads(row["result"]), result_status=row["result_status"],
        error=row["error"], error_type=row["error_type"], logs=json.loads(row["logs"]) if row["logs"] else [],
        inference_time=row["inference_time"], webhook_state=row["webhook_state"])
