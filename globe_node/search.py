"""Text search over the node's own decrypted store, held in memory only.

Content, case titles and notes are stored sealed under the storage key
(:mod:`globe_node.storage`, THREAT-MODEL.md §5.9 G1); a full-text index written to
disk would hold their words in the clear and undo that.  The index is therefore an
SQLite FTS5 table in an **in-memory** database (``:memory:``, temporary storage in
memory too), built from the opened content when the node starts
(:meth:`SearchIndex.load`, fed by :meth:`globe_node.node.Node.open`) and kept current
as messages are stored and sent, titles set and notes written.  It is gone when the
daemon stops; nothing of it reaches the disk or leaves the node.

The index knows nothing of compartments: a hit is a (kind, id) pair, and
:class:`Searcher` keeps only what the user may see (:mod:`globe_node.compartments`),
reading the time and case of each from the store, then pages the rest.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from sqlalchemy import select

from globe_node import db
from globe_node.compartments import visible
from globe_node.store import Store
from globe_node.users import Principal
from globe_node.workviews import SearchHit, SearchPage
from protocol.errors import UsageError
from protocol.messages import MessageContent

__all__ = ["Hit", "SearchIndex", "Searcher", "fts_query", "message_text"]

#: Words of one query.
MAX_WORDS: Final = 16
_WORD: Final = re.compile(r"\w+\*?", re.UNICODE)


@dataclass(frozen=True, slots=True)
class Hit:
    """One match: a message, a case (its title) or a note, with a snippet of the text."""

    kind: str  # message | case | note
    id: str  # message id, case reference or note id
    case: str | None
    snippet: str


def message_text(content: MessageContent) -> str:
    """The words of a message that search finds: subject, body, attachment names, and
    a forwarded original's subject and body."""
    parts = [content.subject, content.body, *(a.name for a in content.attachments)]
    if content.status is not None and content.status.reason:
        parts.append(content.status.reason)
    if content.forwarded is not None:
        origin = MessageContent.decode(content.forwarded.origin.content)
        parts += [origin.subject, origin.body]
    return "\n".join(parts)


def fts_query(text: str) -> str:
    """The FTS5 query for what a person typed: every word must occur (a word ending in
    ``*`` matches as a prefix); FTS5's own syntax is never taken from the input."""
    words = _WORD.findall(text)
    if not words:
        raise UsageError("'q' names at least one word to search for")
    if len(words) > MAX_WORDS:
        raise UsageError(f"'q' has at most {MAX_WORDS} words")
    out = []
    for word in words:
        stem = word.rstrip("*")
        quoted = '"' + stem.replace('"', '""') + '"'
        out.append(quoted + "*" if word.endswith("*") else quoted)
    return " ".join(out)


class SearchIndex:
    """An FTS5 index in memory: documents are (kind, id, case, text)."""

    def __init__(self) -> None:
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA temp_store = MEMORY")
            self._db.execute(
                "CREATE VIRTUAL TABLE docs USING fts5("
                "text, kind UNINDEXED, ref UNINDEXED, case_ref UNINDEXED, "
                "tokenize = 'unicode61 remove_diacritics 2')"
            )
            # Each document's rowid by (kind, id): FTS5 can find a row by its text or its
            # rowid only, and a lookup by an UNINDEXED column reads every row (a put per
            # message received made a catch-up of n messages cost n² row reads).
            self._db.execute(
                "CREATE TABLE refs (id INTEGER PRIMARY KEY, kind TEXT NOT NULL,"
                " ref TEXT NOT NULL, UNIQUE (kind, ref))"
            )

    def put(self, kind: str, ref: str, case: str | None, text: str) -> None:
        """Index a document, replacing the one of the same kind and id."""
        with self._lock, self._db:
            found = self._db.execute(
                "SELECT id FROM refs WHERE kind = ? AND ref = ?", (kind, ref)
            ).fetchone()
            if found is None:
                rowid = self._db.execute(
                    "INSERT INTO refs (kind, ref) VALUES (?, ?)", (kind, ref)
                ).lastrowid
            else:
                rowid = found[0]
                self._db.execute("DELETE FROM docs WHERE rowid = ?", (rowid,))
            self._db.execute(
                "INSERT INTO docs (rowid, text, kind, ref, case_ref) VALUES (?, ?, ?, ?, ?)",
                (rowid, text, kind, ref, case),
            )

    def move(self, kind: str, ref: str, case: str | None) -> None:
        """A document now belongs to another case (a message filed under one)."""
        with self._lock, self._db:
            self._db.execute(
                "UPDATE docs SET case_ref = ? WHERE rowid ="
                " (SELECT id FROM refs WHERE kind = ? AND ref = ?)",
                (case, kind, ref),
            )

    def search(self, query: str) -> Iterator[Hit]:
        """Every match of ``query`` (an :func:`fts_query`), best first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT kind, ref, case_ref, snippet(docs, 0, '[', ']', '...', 12) FROM docs"
                " WHERE docs MATCH ? ORDER BY rank, kind, ref",
                (query,),
            ).fetchall()
        for kind, ref, case, snippet in rows:
            yield Hit(kind, ref, case, snippet)

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM docs").fetchone()[0])

    def close(self) -> None:
        """Drop the index."""
        with self._lock:
            self._db.close()


class Searcher:
    """Text search as one user sees the node: the index's matches, those it may see."""

    def __init__(self, index: SearchIndex, store: Store) -> None:
        self.index = index
        self.store = store

    def messages(self, text: str) -> frozenset[str]:
        """The ids of every message whose text holds ``text``'s words, whoever may see them:
        a list that keeps only these applies the compartments itself."""
        return frozenset(h.id for h in self.index.search(fts_query(text)) if h.kind == "message")

    async def search(self, who: Principal, text: str, *, limit: int, offset: int) -> SearchPage:
        """The matches of ``text`` that ``who`` sees, best first, one page of them."""
        hits = list(self.index.search(fts_query(text)))
        seen = await self._visible(who, hits)
        shown = [
            SearchHit(h.kind, h.id, seen[(h.kind, h.id)][0], seen[(h.kind, h.id)][1], h.snippet)
            for h in hits
            if (h.kind, h.id) in seen
        ]
        return SearchPage(tuple(shown[offset : offset + limit]), len(shown), offset, limit)

    async def _visible(
        self, who: Principal, hits: list[Hit]
    ) -> dict[tuple[str, str], tuple[str | None, int]]:
        """(kind, id) -> (case, time) of the hits ``who`` sees."""
        ids = {kind: sorted({h.id for h in hits if h.kind == kind}) for kind in
               ("message", "case", "note")}  # fmt: skip
        out: dict[tuple[str, str], tuple[str | None, int]] = {}
        async with self.store.read() as s:
            for model, when in ((db.InMessage, db.InMessage.received),
                                (db.OutMessage, db.OutMessage.created)):  # fmt: skip
                rows = await s.execute(
                    select(model.message_id, model.case, when).where(
                        model.message_id.in_(ids["message"]), visible(who, model.team)
                    )
                )
                out.update({("message", m): (c, t) for m, c, t in rows.all()})
            cases = await s.execute(
                select(db.CaseRow.ref, db.CaseRow.updated).where(
                    db.CaseRow.ref.in_(ids["case"]), visible(who, db.CaseRow.team)
                )
            )
            out.update({("case", r): (r, t) for r, t in cases.all()})
            notes = await s.execute(
                select(db.NoteRow.id, db.NoteRow.case, db.NoteRow.time)
                .join(db.CaseRow, db.CaseRow.ref == db.NoteRow.case)
                .where(db.NoteRow.id.in_(ids["note"]), visible(who, db.CaseRow.team))
            )
            out.update({("note", n): (c, t) for n, c, t in notes.all()})
        return out
