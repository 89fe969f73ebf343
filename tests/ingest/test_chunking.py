from ingest.chunking import chunk_document, deep_link, pack_sections, split_sentences, window_text
from km_search.types import Document, DocumentMeta, Section


def test_split_sentences_keeps_lines_and_sentences():
    assert split_sentences("One. Two?  Three!\nFour\n\nFive: six") == ["One.", "Two?", "Three!", "Four", "Five:", "six"]
    assert split_sentences("  \n ") == []


def test_short_text_is_one_window():
    assert window_text("A short passage. Two sentences.", 50, 10) == ["A short passage. Two sentences."]


def test_windows_respect_size_and_overlap_whole_sentences():
    sentences = [f"Sentence number {i} has six words." for i in range(20)]  # 6 words each
    windows = window_text(" ".join(sentences), max_words=30, overlap=12)
    assert all(len(w.split()) <= 30 for w in windows)
    # every sentence appears somewhere, in order
    joined = " ".join(windows)
    for s in sentences:
        assert s in joined
    # consecutive windows share the carried sentences (12 words = 2 sentences)
    for a, b in zip(windows, windows[1:]):
        tail = " ".join(a.split()[-12:])
        assert b.startswith(tail)


def test_overlong_sentence_is_cut_by_words():
    text = " ".join(f"w{i}" for i in range(250))
    windows = window_text(text, max_words=100, overlap=0)
    assert [len(w.split()) for w in windows] == [100, 100, 50]


def test_chunks_never_straddle_sections_and_carry_links():
    doc = Document(
        path="guide/setup.html",
        format="html",
        meta=DocumentMeta(title="Setup guide"),
        sections=(
            Section("Install the VPN client first.", ("Setup guide", "VPN"), anchor="vpn"),
            Section("Then request a laptop.", ("Setup guide", "Laptop"), anchor="laptop"),
        ),
    )
    chunks = chunk_document(doc, 100, 10, pack=False)
    assert [c.source for c in chunks] == ["guide/setup.html#vpn", "guide/setup.html#laptop"]
    assert [c.ordinal for c in chunks] == [0, 1]
    assert chunks[1].heading_path == ("Setup guide", "Laptop")
    assert chunks[0].indexed_text() == "Setup guide > VPN\nInstall the VPN client first."


def test_deep_link_prefers_anchor_then_page():
    assert deep_link("a.pdf", Section("x", page=3)) == "a.pdf#page=3"
    assert deep_link("a.md", Section("x", anchor="intro")) == "a.md#intro"
    assert deep_link("a.txt", Section("x")) == "a.txt"


def test_short_sibling_sections_are_packed_and_link_to_the_largest_part():
    sections = (
        Section("Accepted.", ("ADR-12", "Status"), anchor="status"),
        Section("MySQL was slow for reports and locked tables during migrations.", ("ADR-12", "Context"), anchor="context"),
        Section("Move to PostgreSQL.", ("ADR-12", "Decision"), anchor="decision"),
        Section("Other chapter text.", ("Appendix",), anchor="appendix"),
    )
    packed = pack_sections(sections, max_words=50)
    assert len(packed) == 2
    assert packed[0].anchor == "context" and packed[0].heading_path == ("ADR-12", "Context")
    assert packed[0].text == "Accepted.\nContext\nMySQL was slow for reports and locked tables during migrations.\nDecision\nMove to PostgreSQL."
    assert packed[1] == sections[3]  # a different top-level heading is never joined
    # nothing is packed beyond the size limit
    assert [s.anchor for s in pack_sections(sections, max_words=10)] == ["status", "context", "decision", "appendix"]


def test_only_short_documents_are_packed_when_packing_is_by_document_size():
    record = tuple(Section(f"{name} part of the record.", ("ADR-3", name), anchor=name.lower())
                   for name in ("Status", "Context", "Decision"))
    doc = Document("adr-3.md", "markdown", record, DocumentMeta(title="ADR-3"))
    assert len(chunk_document(doc, 100, 10, pack=False)) == 3
    # 15 words: within a limit of 20 it reads as one text, beyond a limit of 10 its sections stay apart
    assert [c.text for c in chunk_document(doc, 100, 10, pack=False, pack_document_words=20)] == [
        "Status part of the record. Context Context part of the record. Decision Decision part of the record."]
    assert len(chunk_document(doc, 100, 10, pack=False, pack_document_words=10)) == 3


def test_entries_under_one_heading_are_never_packed_together():
    # a DocBook qandaset: every answer is its own anchored section under the same heading path
    entries = tuple(Section(f"Answer {i}.", ("FAQ", "Basics"), anchor=f"q{i}") for i in range(3))
    assert pack_sections(entries, max_words=100) == list(entries)
    # a part with a heading of its own still joins its sibling entry
    mixed = (entries[0], Section("Note.", ("FAQ", "Basics", "Note"), anchor="note"))
    assert [s.anchor for s in pack_sections(mixed, max_words=100)] == ["q0"]


def test_pages_are_never_packed_together():
    pages = (Section("one", page=1), Section("two", page=2))
    assert pack_sections(pages, 100) == list(pages)
