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

from km_search.types import Chunk, Document, Section

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


def window_text(text: str, max_words: int, overlap: int) -> list[str]:
    """Pack sentences into windows of at most `max_words` words, overlapping by about `overlap` words."""
    units: list[str] = []
    for sentence in split_sentences(text):
        units.extend(_word_pieces(sentence, max_words))
    windows: list[str] = []
    current: list[str] = []
    count = 0
    for unit in units:
        n = len(unit.split())
        if current and count + n > max_words:
            windows.append(" ".join(current))
            # carry whole trailing sentences worth at most `overlap` words into the next window
            carried: list[str] = []
            carried_words = 0
            for prev in reversed(current):
                w = len(prev.split())
                if carried_words + w > overlap:
                    break
                carried.insert(0, prev)
                carried_words += w
            current, count = carried, carried_words
        current.append(unit)
        count += n
    if current:
        tail = " ".join(current)
        # a tail made only of carried-over words adds nothing new
        if not windows or not windows[-1].endswith(tail):
            windows.append(tail)
    return windows


def _words(text: str) -> int:
    return len(text.split())


def pack_sections(sections: tuple[Section, ...], max_words: int) -> list[Section]:
    """Join runs of short sibling sections (same top-level heading) into one of at most `max_words`.

    A three-line "Status" section is too small to stand alone: its embedding has little to go on and
    an answer often spans it and its neighbour. The joined section keeps each part's heading as a
    line of text and links to the part holding the most words.
    """
    packed: list[Section] = []
    group: list[Section] = []

    def flush() -> None:
        if not group:
            return
        if len(group) == 1:
            packed.append(group[0])
        else:
            main = max(group, key=lambda s: _words(s.text))
            text = "\n".join(
                (f"{s.heading_path[-1]}\n{s.text}" if s.heading_path and s is not group[0] else s.text) for s in group
            )
            packed.append(Section(text, main.heading_path, main.anchor, main.page))
        group.clear()

    for section in sections:
        size = _words(section.text)
        same_parent = group and group[0].heading_path[:1] == section.heading_path[:1] and group[0].page == section.page
        # sections under one and the same heading path are entries of a list (FAQ entries of a
        # DocBook qandaset, definitions), each its own topic: never joined
        entry = any(s.heading_path == section.heading_path for s in group)
        if group and same_parent and not entry and sum(_words(s.text) for s in group) + size <= max_words:
            group.append(section)
            continue
        flush()
        group.append(section)
    flush()
    return packed


def chunk_document(doc: Document, max_words: int = 150, overlap: int = 30, pack: bool = True,
                   pack_document_words: int = 0) -> list[Chunk]:
    chunks: list[Chunk] = []
    pack = pack or 0 < sum(_words(s.text) for s in doc.sections) <= pack_document_words
    sections = pack_sections(doc.sections, max_words) if pack else list(doc.sections)
    for section in sections:
        for text in window_text(section.text, max_words, overlap):
            chunks.append(
                Chunk(
                    doc_path=doc.path,
                    ordinal=len(chunks),
                    text=text,
                    source=deep_link(doc.path, section),
                    title=doc.title,
                    heading_path=section.heading_path,
                    page=section.page,
                    anchor=section.anchor,
                )
            )
    return chunks
