"""Structure-aware chunking: Document -> Chunks.

A chunk never spans two sections, so each one keeps an exact heading path and deep link. Long
sections are cut into windows of whole sentences (about `chunk_words` words each) that repeat the
last `overlap` words of the previous window, so an answer that falls on a boundary is still whole
in one of them. The embedding model truncates at 256 word pieces (~190 English words), which bounds
useful window sizes.
"""

from __future__ import annotations

import re
from typing import Iterator

from km_search.types import Chunk, Document, Part, Section

# How a passage's text is laid out, recorded in a snapshot's manifest: changing it re-chunks every
# document at the next ingest. Each line of a section (a paragraph, a list item, a table row) starts
# a line of the passage, so an answer never quotes two of them as one sentence.
PASSAGE_TEXT = "lines kept"

_SENTENCE_END = re.compile(r"(?<=[.!?:;])\s+|\n+")


def deep_link(path: str, section: Section) -> str:
    """`path#anchor` or `path#page=N`; a document that is itself a part of a file (a message of a
    mailbox, `archive.mbox#msg=3`) joins its section's anchor with '&', keeping one fragment."""
    joiner = "&" if "#" in path else "#"
    if section.anchor:
        return f"{path}{joiner}{section.anchor}"
    if section.page is not None:
        return f"{path}{joiner}page={section.page}"
    return path


def split_sentences(text: str) -> list[str]:
    """Sentences and lines, with their trailing whitespace dropped; never empty strings."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def _word_pieces(sentence: str, max_words: int) -> Iterator[str]:
    """A sentence longer than a whole window is cut into window-sized runs of words."""
    words = sentence.split()
    for i in range(0, len(words), max_words):
        yield " ".join(words[i : i + max_words])


def _units(text: str, max_words: int) -> list[tuple[str, bool]]:
    """The sentences of `text`, none longer than a window: what windows are made of; each with
    whether it opens a line of `text` (a paragraph, a list item, a table row)."""
    return [(piece, not k and not m)
            for line in text.split("\n")
            for k, sentence in enumerate(split_sentences(line))
            for m, piece in enumerate(_word_pieces(sentence, max_words))]


def _windows(units: list[str], max_words: int, overlap: int) -> list[range]:
    """Runs of consecutive units of at most `max_words` words, each repeating the whole trailing
    units (at most `overlap` words) of the one before."""
    sizes = [len(u.split()) for u in units]
    windows: list[range] = []
    start = count = 0
    for i, n in enumerate(sizes):
        if i > start and count + n > max_words:
            windows.append(range(start, i))
            begin, carried = i, 0
            while begin > start and carried + sizes[begin - 1] <= overlap:
                begin -= 1
                carried += sizes[begin]
            start, count = begin, carried
        count += n
    # a tail made only of carried-over units adds nothing new
    if units and (not windows or windows[-1].stop < len(units)):
        windows.append(range(start, len(units)))
    return windows


def _words(text: str) -> int:
    return len(text.split())


def _asks(section: Section) -> bool:
    """Whether the section is headed by a question ('Must I reboot to upgrade?'): an FAQ entry."""
    return bool(section.heading_path) and section.heading_path[-1].rstrip().endswith("?")


def pack_sections(sections: tuple[Section, ...], max_words: int) -> list[tuple[Section, ...]]:
    """Runs of short sibling sections (same top-level heading and page) of at most `max_words` words
    in all, each run to be one passage; a section that joins nothing is a run of one.

    A three-line "Status" section is too small to stand alone: its embedding has little to go on and
    an answer often spans it and its neighbour.
    """
    runs: list[tuple[Section, ...]] = []
    group: list[Section] = []
    for section in sections:
        size = _words(section.text)
        same_parent = group and group[0].heading_path[:1] == section.heading_path[:1] and group[0].page == section.page
        # sections under one and the same heading path are entries of a list (FAQ entries of a
        # DocBook qandaset, definitions), each its own topic: never joined
        entry = any(s.heading_path == section.heading_path for s in group)
        # a section headed by a question is an FAQ entry: its own topic, whatever its size
        entry = entry or _asks(section) or any(_asks(s) for s in group)
        if group and same_parent and not entry and sum(_words(s.text) for s in group) + size <= max_words:
            group.append(section)
            continue
        if group:
            runs.append(tuple(group))
        group = [section]
    if group:
        runs.append(tuple(group))
    return runs


def chunk_document(doc: Document, max_words: int = 150, overlap: int = 30,
                   pack_document_words: int = 0, pack_words: int = 0) -> list[Chunk]:
    """The passages of a document. A document of at most `pack_document_words` words (a decision
    record, a runbook) has its short sibling sections joined in runs of at most `pack_words` words
    (0: `max_words`): each joined part keeps its heading as a line of text and its own deep link
    (`Chunk.parts`); the passage as a whole is filed under the part with the most words. Parts and
    their headings begin on a new line, so no sentence of an answer runs across two sections."""
    chunks: list[Chunk] = []
    pack = 0 < sum(_words(s.text) for s in doc.sections) <= pack_document_words
    runs = pack_sections(doc.sections, pack_words or max_words) if pack else [(s,) for s in doc.sections]
    for run in runs:
        units: list[str] = []
        owner: list[int] = []  # the run's section each unit comes from
        # the unit opens a line of its section, a joined part or follows its heading: joined by a
        # newline, so a list item, a table row or a byline never runs into the next sentence
        line_before: list[bool] = []
        for j, section in enumerate(run):
            heading = _units(section.heading_path[-1], max_words) if j and section.heading_path else []
            pieces = heading + _units(section.text, max_words)
            units.extend(piece for piece, _ in pieces)
            owner.extend([j] * len(pieces))
            line_before.extend(opens_line for _, opens_line in pieces)
        for window in _windows(units, max_words, overlap):
            members: list[int] = []
            offsets: list[int] = []
            cursor = 0
            for i in window:
                if not members or members[-1] != owner[i]:
                    members.append(owner[i])
                    offsets.append(cursor)
                cursor += len(units[i]) + 1
            main = max((run[m] for m in members), key=lambda s: _words(s.text))
            parts = tuple(
                Part(offset, deep_link(doc.path, run[m]), run[m].heading_path, run[m].page)
                for m, offset in zip(members, offsets)
            ) if len(members) > 1 else ()
            chunks.append(
                Chunk(
                    doc_path=doc.path,
                    ordinal=len(chunks),
                    text="".join((("\n" if line_before[i] else " ") if i != window[0] else "") + units[i]
                                 for i in window),
                    source=deep_link(doc.path, main),
                    title=doc.title,
                    heading_path=main.heading_path,
                    page=main.page,
                    anchor=main.anchor,
                    parts=parts,
                )
            )
    return chunks
