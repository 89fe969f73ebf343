from ingest.chunking import chunk_document, deep_link, pack_sections, split_sentences
from km_search.types import Document, DocumentMeta, Section


def window_text(text: str, max_words: int, overlap: int) -> list[str]:
    """The passages of a one-section document: how a section's text is windowed."""
    doc = Document("t.md", "markdown", (Section(text),), DocumentMeta())
    return [c.text for c in chunk_document(doc, max_words, overlap, pack_document_words=0)]


def test_split_sentences_keeps_lines_and_sentences():
    assert split_sentences("One. Two?  Three!\nFour\n\nFive: six") == ["One.", "Two?", "Three!", "Four", "Five:", "six"]
    assert split_sentences("  \n ") == []


def test_a_passage_keeps_the_lines_of_its_section():
    """A byline, a list item or a table row starts a line of the passage, so an answer never quotes it
    run together with the next sentence; sentences of one paragraph stay on one line."""
    text = "Tomás Herrera - 2025-03-10\nThis guide explains it. It is short.\n- Open ServiceDesk\n- Pick a model\nOS | Model"
    assert window_text(text, 50, 10) == [text]
    assert window_text("One paragraph.  Two sentences.", 50, 10) == ["One paragraph. Two sentences."]


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
    chunks = chunk_document(doc, 100, 10, pack_document_words=0)
    assert [c.source for c in chunks] == ["guide/setup.html#vpn", "guide/setup.html#laptop"]
    assert [c.ordinal for c in chunks] == [0, 1]
    assert chunks[1].heading_path == ("Setup guide", "Laptop")
    assert chunks[0].indexed_text() == "Setup guide > VPN\nInstall the VPN client first."


def test_deep_link_prefers_anchor_then_page():
    assert deep_link("a.pdf", Section("x", page=3)) == "a.pdf#page=3"
    assert deep_link("a.md", Section("x", anchor="intro")) == "a.md#intro"
    assert deep_link("a.txt", Section("x")) == "a.txt"


def test_short_sibling_sections_are_packed_into_runs():
    sections = (
        Section("Accepted.", ("ADR-12", "Status"), anchor="status"),
        Section("MySQL was slow for reports and locked tables during migrations.", ("ADR-12", "Context"), anchor="context"),
        Section("Move to PostgreSQL.", ("ADR-12", "Decision"), anchor="decision"),
        Section("Other chapter text.", ("Appendix",), anchor="appendix"),
    )
    assert pack_sections(sections, max_words=50) == [sections[:3], sections[3:]]  # another top-level heading: apart
    # nothing is packed beyond the size limit
    assert pack_sections(sections, max_words=10) == [(s,) for s in sections]


def test_a_packed_passage_keeps_each_part_offset_and_link():
    record = (
        Section("Accepted.", ("ADR-12", "Status"), anchor="status"),
        Section("MySQL was slow for reports and locked tables during migrations.", ("ADR-12", "Context"), anchor="context"),
        Section("Move to PostgreSQL.", ("ADR-12", "Decision"), anchor="decision"),
    )
    doc = Document("adr/12.md", "markdown", record, DocumentMeta(title="ADR-12"))
    [chunk] = chunk_document(doc, 100, 10, pack_document_words=1000)
    # each part and its heading on a line of their own: no sentence runs across two sections
    assert chunk.text == ("Accepted.\nContext\nMySQL was slow for reports and locked tables during migrations.\n"
                          "Decision\nMove to PostgreSQL.")
    # filed under the part with the most words, as before
    assert chunk.source == "adr/12.md#context" and chunk.heading_path == ("ADR-12", "Context")
    assert [(chunk.text[p.offset:p.offset + 8], p.source) for p in chunk.parts] == [
        ("Accepted", "adr/12.md#status"), ("Context\n", "adr/12.md#context"), ("Decision", "adr/12.md#decision")]
    assert chunk.parts[2].heading_path == ("ADR-12", "Decision")
    # a run that its heading lines push past one window: a window holding one part alone is that
    # part's own, with no parts
    short = Document("adr/13.md", "markdown", (Section("Accepted.", ("ADR-13", "Status"), anchor="status"), Section("MySQL was slow for reports and locked "
                     "tables during every migration.", ("ADR-13", "Context"), anchor="context")))
    first, second = chunk_document(short, 12, 0, pack_document_words=1000)
    assert first.text == "Accepted.\nContext" and [p.source for p in first.parts] == ["adr/13.md#status", "adr/13.md#context"]
    assert second.parts == () and second.source == "adr/13.md#context" and second.text.startswith("MySQL")


def test_only_short_documents_are_packed():
    record = tuple(Section(f"{name} part of the record.", ("ADR-3", name), anchor=name.lower())
                   for name in ("Status", "Context", "Decision"))
    doc = Document("adr-3.md", "markdown", record, DocumentMeta(title="ADR-3"))
    assert len(chunk_document(doc, 100, 10, pack_document_words=0)) == 3
    # 15 words: within a limit of 20 it reads as one text, beyond a limit of 10 its sections stay apart
    assert [c.text for c in chunk_document(doc, 100, 10, pack_document_words=20)] == [
        "Status part of the record.\nContext\nContext part of the record.\nDecision\nDecision part of the record."]
    assert len(chunk_document(doc, 100, 10, pack_document_words=10)) == 3


def test_entries_under_one_heading_are_never_packed_together():
    # a DocBook qandaset: every answer is its own anchored section under the same heading path
    entries = tuple(Section(f"Answer {i}.", ("FAQ", "Basics"), anchor=f"q{i}") for i in range(3))
    assert pack_sections(entries, max_words=100) == [(e,) for e in entries]
    # a part with a heading of its own still joins its sibling entry
    mixed = (entries[0], Section("Note.", ("FAQ", "Basics", "Note"), anchor="note"))
    assert pack_sections(mixed, max_words=100) == [mixed]


def test_pages_are_never_packed_together():
    pages = (Section("one", page=1), Section("two", page=2))
    assert pack_sections(pages, 100) == [(p,) for p in pages]


def test_sections_headed_by_a_question_are_never_packed():
    # an FAQ page: each question its own topic, however short its answer
    faq = (Section("Intro to the chapter.", ("Upgrading",), anchor="up"),
           Section("No, packages upgrade in place.", ("Upgrading", "Must I reboot to upgrade?"), anchor="reboot"),
           Section("Use apt.", ("Upgrading", "How do I upgrade? "), anchor="how"),
           Section("Run it nightly.", ("Upgrading", "Schedule"), anchor="schedule"))
    assert pack_sections(faq, max_words=100) == [(s,) for s in faq]


def test_the_embedded_text_names_the_title_and_the_passages_own_heading():
    """A manual's chapter > section > subsection path took the model's tokens and made a document's
    passages alike: the embedder reads the title and the nearest heading only (docs/quality.md)."""
    from km_search.types import Chunk

    def chunk(title, path):
        return Chunk(doc_path="r.html", ordinal=0, text="Install it.", source="r.html", title=title, heading_path=path)

    assert chunk("R Admin", ("R Admin", "6 Add-on packages", "6.3 Installing packages")).indexed_text() == \
        "R Admin > 6.3 Installing packages\nInstall it."
    assert chunk("Handbook", ("Handbook",)).indexed_text() == "Handbook\nInstall it."
    assert chunk("", ("Setup",)).indexed_text() == "Setup\nInstall it."
    assert chunk("", ()).indexed_text() == "\nInstall it."
