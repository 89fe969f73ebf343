"""E-mail (.eml) and mailboxes (.mbox): a thread about the Debian FAQ's package tools, written at test
time with the stdlib from the FAQ's real text, with real attachments (the chapter as Markdown and
as the FAQ's own HTML page)."""

from __future__ import annotations

import mailbox
import textwrap
from email.message import EmailMessage
from pathlib import Path

import pytest

from ingest.parsers import parse_file
from ingest.parsers.mail import parse_mbox_messages, strip_replies
from km_search.errors import ParseError

EMPTY = "empty file: no text to index"


def wrapped(text: str) -> str:
    """Paragraphs hard-wrapped at 72 columns, as mail clients send them."""
    return "\n\n".join(textwrap.fill(p, 72) for p in text.split("\n"))


def section_text(real, chapter: str, heading: str) -> str:
    return next(s.text for s in real.chapter(chapter).sections if s.heading_path[-1] == heading)


def question(real) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Bob Builder <bob@example.org>"
    msg["To"] = "debian-user@lists.debian.org"
    msg["Subject"] = "What programs does Debian provide for managing its packages?"
    msg["Date"] = "Sun, 03 Mar 2024 09:00:00 +0000"
    msg["Message-ID"] = "<q1.bob@example.org>"
    intro = section_text(real, "pkgtools", "8.1. What programs does Debian provide for managing its packages?")
    msg.set_content(wrapped(intro.split("\n")[0]) + "\n\nWhich of them should I learn first?\n\nThanks,\nBob\n")
    return msg


def reply(real) -> EmailMessage:
    dpkg = section_text(real, "pkgtools", "8.1.1. dpkg").split("\n")[0]
    apt = section_text(real, "pkgtools", "8.1.2. APT").split("\n")[0]
    quoted = "\n".join("> " + line for line in question(real).get_content().splitlines())
    msg = EmailMessage()
    msg["From"] = '"Fernández-Sanguino Peña, Javier" <jfs@debian.org>'
    msg["To"] = "Bob Builder <bob@example.org>"
    msg["Cc"] = "debian-user@lists.debian.org"
    msg["Subject"] = "Re: What programs does Debian provide for managing its packages?"
    msg["Date"] = "Mon, 04 Mar 2024 10:30:00 +0100"
    msg["Message-ID"] = "<r2.jfs@debian.org>"
    msg["In-Reply-To"] = "<q1.bob@example.org>"
    msg["References"] = "<q1.bob@example.org>"
    msg.set_content(
        wrapped(dpkg) + "\n\n"
        "On Sun, 3 Mar 2024 at 09:00, Bob Builder <\nbob@example.org> wrote:\n" + quoted + "\n\n"
        + wrapped(apt) + "\n\nThe whole chapter is attached, as Markdown and as the FAQ page.\n\n"
        "-- \nJavier Fernández-Sanguino Peña\nDebian Documentation Project\n"
    )
    msg.add_attachment(real.markdown(real.chapter("pkgtools")), subtype="markdown", filename="pkgtools.md")
    msg.add_attachment(real.html("pkgtools").read_bytes(), maintype="text", subtype="html", filename="pkgtools.en.html")
    msg.add_attachment(b"\x89PNG\r\n\x1a\n" + bytes(200), maintype="image", subtype="png", filename="dselect.png")
    msg.add_attachment(b"%PDF-1.7 truncated", maintype="application", subtype="pdf", filename="broken.pdf")
    return msg


def html_reply(real) -> EmailMessage:
    synaptic = section_text(real, "pkgtools", "8.1.4. synaptic").split("\n")[0]
    msg = EmailMessage()
    msg["From"] = "carl@example.net"
    msg["Subject"] = "Re: What programs does Debian provide for managing its packages?"
    msg["Date"] = "Tue, 05 Mar 2024 08:15:00 -0500"
    msg["Message-ID"] = "<h3.carl@example.net>"
    msg["In-Reply-To"] = "<r2.jfs@debian.org>"
    msg["References"] = "<q1.bob@example.org> <r2.jfs@debian.org>"
    msg.set_content(
        f"<html><body><div dir='ltr'><p>{synaptic}</p></div>"
        "<div class='gmail_quote'><div class='gmail_attr'>On Mon, 4 Mar 2024, Javier wrote:</div>"
        "<blockquote type='cite'><p>This is the main package management program.</p></blockquote></div>"
        "<div class='gmail_signature'>Carl, Debian user since 2005</div></body></html>",
        subtype="html",
    )
    return msg


def write_eml(path: Path, msg: EmailMessage) -> Path:
    path.write_bytes(bytes(msg))
    return path


def test_eml_metadata_and_thread_ids(tmp_path, real):
    doc = parse_file(write_eml(tmp_path / "reply.eml", reply(real)), "reply.eml")
    assert doc.format == "email"
    assert doc.meta.title == "Re: What programs does Debian provide for managing its packages?"
    assert doc.meta.authors == ("Fernández-Sanguino Peña, Javier <jfs@debian.org>",)
    assert doc.meta.created == "2024-03-04"
    extra = doc.meta.extra
    assert extra["message_id"] == "r2.jfs@debian.org"
    assert extra["in_reply_to"] == "q1.bob@example.org"
    assert extra["thread"] == "q1.bob@example.org"
    assert extra["to"] == "Bob Builder <bob@example.org>"
    assert extra["cc"] == "debian-user@lists.debian.org"
    assert extra["attachments"] == "pkgtools.md, pkgtools.en.html"  # the image and the broken PDF are not read


def test_eml_body_without_quoted_reply_and_signature(tmp_path, real):
    doc = parse_file(write_eml(tmp_path / "reply.eml", reply(real)), "reply.eml")
    body = doc.sections[0]
    assert body.heading_path == () and body.anchor is None
    dpkg = section_text(real, "pkgtools", "8.1.1. dpkg").split("\n")[0]
    apt = section_text(real, "pkgtools", "8.1.2. APT").split("\n")[0]
    # hard-wrapped paragraphs come back as one line each
    assert body.text.split("\n") == [dpkg, apt, "The whole chapter is attached, as Markdown and as the FAQ page."]
    for gone in ("wrote:", "bob@example.org", "Which of them should I learn first?", "Documentation Project"):
        assert gone not in body.text


def test_eml_attachments_are_sections_of_their_own(tmp_path, real):
    doc = parse_file(write_eml(tmp_path / "reply.eml", reply(real)), "reply.eml")
    markdown = [s for s in doc.sections if s.anchor == "attachment=pkgtools.md"]
    page = [s for s in doc.sections if s.anchor == "attachment=pkgtools.en.html"]
    assert len(markdown) + len(page) + 1 == len(doc.sections)
    assert all(s.heading_path[0] == "pkgtools.md" for s in markdown)
    dselect_md = next(s for s in markdown if s.heading_path[-1] == "8.1.1. dpkg")
    assert dselect_md.heading_path[:2] == ("pkgtools.md", "Chapter 8. The Debian package management tools")
    assert dselect_md.text.startswith("This is the main package management program.")
    apt_html = next(s for s in page if s.heading_path[-1] == "8.1.2. APT")
    assert apt_html.heading_path[0] == "pkgtools.en.html"
    assert apt_html.text.startswith("APT is the Advanced Package Tool")


def test_html_body_drops_quote_and_signature_blocks(tmp_path, real):
    doc = parse_file(write_eml(tmp_path / "html.eml", html_reply(real)), "html.eml")
    synaptic = section_text(real, "pkgtools", "8.1.4. synaptic").split("\n")[0]
    assert [s.text for s in doc.sections] == [synaptic]
    assert doc.meta.authors == ("carl@example.net",)
    assert doc.meta.extra["thread"] == "q1.bob@example.org"
    assert doc.meta.extra["in_reply_to"] == "r2.jfs@debian.org"


def test_forwarded_message_is_read_as_an_attachment(tmp_path, real):
    fwd = EmailMessage()
    fwd["From"] = "Ann Example <ann@example.org>"
    fwd["Subject"] = "Fwd: package tools question"
    fwd["Date"] = "Wed, 06 Mar 2024 12:00:00 +0000"
    fwd.set_content("Forwarding Bob's question for the FAQ team.\n")
    fwd.add_attachment(question(real))
    doc = parse_file(write_eml(tmp_path / "fwd.eml", fwd), "fwd.eml")
    assert doc.sections[0].text == "Forwarding Bob's question for the FAQ team."
    inner = doc.sections[1]
    assert inner.heading_path == ("What programs does Debian provide for managing its packages?.eml",)
    assert inner.anchor.startswith("attachment=What%20programs")
    assert "Which of them should I learn first?" in inner.text
    assert doc.meta.extra.get("thread") is None  # no Message-ID of its own


def test_charsets_outlook_quotes_and_subject_only_messages(tmp_path, real):
    msg = EmailMessage()
    msg["From"] = "Javier <jfs@debian.org>"
    msg["Subject"] = "Reunión"
    msg["Date"] = "not a date"
    msg.set_content("Gracias, Fernández.\n\n-----Original Message-----\nFrom: Bob\nWhat is dpkg?\n", charset="iso-8859-1")
    doc = parse_file(write_eml(tmp_path / "latin1.eml", msg), "latin1.eml")
    assert [s.text for s in doc.sections] == ["Gracias, Fernández."]
    assert doc.meta.created is None
    only = EmailMessage()
    only["From"] = "bob@example.org"
    only["Subject"] = "dselect is deprecated, use aptitude"
    doc = parse_file(write_eml(tmp_path / "subject.eml", only), "subject.eml")
    assert [s.text for s in doc.sections] == ["dselect is deprecated, use aptitude"]


def test_strip_replies_keeps_text_between_quotes_as_paragraphs():
    lines = ["Yes.", "", "Bob wrote:", "> one", "> two", "Second answer.", "> three", "Third.", "--", "sig"]
    assert strip_replies(lines) == ["Yes.", "", "Second answer.", "", "Third."]


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"", EMPTY),
        (b"This is a plain note someone named .eml.\nIt has no headers.\n", "not an e-mail message: it has no From"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64), "binary file, not an e-mail message"),
        (b"From: bob@example.org\nTo: ann@example.org\n\n\n", EMPTY),
    ],
)
def test_eml_broken_and_empty_files(tmp_path, content, error):
    path = tmp_path / "broken.eml"
    path.write_bytes(content)
    with pytest.raises(ParseError) as exc:
        parse_file(path, "broken.eml")
    assert str(exc.value).startswith(error)


# --- mbox -------------------------------------------------------------------------------------


def thread_mbox(path: Path, real) -> Path:
    box = mailbox.mbox(path)
    box.add(question(real))
    box.add(reply(real))
    empty = EmailMessage()
    empty["From"] = "ann@example.org"
    empty["Message-ID"] = "<empty@example.org>"
    box.add(empty)  # no subject, no body: not a message to index
    box.add(html_reply(real))
    later = EmailMessage()
    later["From"] = "Bob Builder <bob@example.org>"
    later["Subject"] = "Re: What programs does Debian provide for managing its packages?"
    later["Date"] = "Wed, 06 Mar 2024 18:00:00 +0000"
    later["Message-ID"] = "<q5.bob@example.org>"
    later["References"] = "<q1.bob@example.org> <h3.carl@example.net>"
    later.set_content("From what you all wrote, I will start with aptitude.\nThanks!\n")  # escaped as >From
    box.add(later)
    box.flush()
    box.close()
    return path


def test_mbox_is_one_document_with_a_section_run_per_message(tmp_path, real):
    doc = parse_file(thread_mbox(tmp_path / "debian-user-2024-03.mbox", real), "lists/debian-user-2024-03.mbox")
    assert doc.format == "mbox" and doc.path == "lists/debian-user-2024-03.mbox"
    assert doc.meta.title == "debian-user-2024-03"
    assert doc.meta.authors == ("Bob Builder <bob@example.org>", "Fernández-Sanguino Peña, Javier <jfs@debian.org>",
                                "carl@example.net")
    assert (doc.meta.created, doc.meta.modified) == ("2024-03-03", "2024-03-06")
    assert doc.meta.extra == {"messages": "4"}
    assert {s.anchor for s in doc.sections} == {"msg=1", "msg=2", "msg=4", "msg=5"}  # message 3 has no text
    first = doc.sections[0]
    assert first.heading_path == ("What programs does Debian provide for managing its packages?",)
    assert first.text.endswith("Which of them should I learn first?\nThanks,\nBob")
    attached = next(s for s in doc.sections if s.anchor == "msg=2" and s.heading_path[1:2] == ("pkgtools.en.html",))
    assert attached.heading_path[0] == "Re: What programs does Debian provide for managing its packages?"
    last = [s for s in doc.sections if s.anchor == "msg=5"]
    assert [s.text for s in last] == ["From what you all wrote, I will start with aptitude. Thanks!"]  # one paragraph


def test_mbox_messages_as_documents_of_their_own(tmp_path, real):
    docs = parse_mbox_messages(thread_mbox(tmp_path / "list.mbox", real), "list.mbox")
    assert [d.path for d in docs] == ["list.mbox"] * 4
    assert [{s.anchor for s in d.sections} for d in docs] == [{"msg=1"}, {"msg=2"}, {"msg=4"}, {"msg=5"}]
    assert [d.meta.extra["thread"] for d in docs] == ["q1.bob@example.org"] * 4
    assert [d.meta.extra["message_id"] for d in docs] == ["q1.bob@example.org", "r2.jfs@debian.org",
                                                           "h3.carl@example.net", "q5.bob@example.org"]
    assert docs[1].meta.title == "Re: What programs does Debian provide for managing its packages?"
    assert docs[1].sections[0].heading_path == ()
    assert any(s.heading_path[:1] == ("pkgtools.md",) for s in docs[1].sections)


def test_mbox_broken_and_empty_files(tmp_path, real):
    cases = {
        "empty.mbox": (b"", EMPTY),
        "eml-renamed.mbox": (bytes(question(real)), "not an mbox mailbox: it does not start with a 'From ' separator line"),
        "binary.mbox": (b"From \x00\x01\x02" + bytes(100), "binary file, not an mbox mailbox"),
        "no-text.mbox": ((b"From MAILER-DAEMON Mon Mar  4 10:00:00 2024\nFrom: a@example.org\n\n\n"
                          b"From MAILER-DAEMON Mon Mar  4 10:00:01 2024\nFrom: b@example.org\n\n"),
                         EMPTY + " (none of its 2 messages has text)"),
    }
    for name, (content, error) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ParseError) as exc:
            parse_file(tmp_path / name, name)
        assert str(exc.value).startswith(error), (name, str(exc.value))


# --- an mbox in a folder: one document per message ---------------------------------------------


def test_ingest_makes_a_document_of_each_message_with_its_sender_and_re_embeds_only_a_new_one(
        tmp_path, real, settings, fake_embedder):
    from ingest.pipeline import ingest
    from km_search.index.snapshot import Snapshot

    docs = tmp_path / "docs"
    docs.mkdir()
    archive = thread_mbox(docs / "list.mbox", real)
    first = ingest([docs], settings, embedder=fake_embedder, progress=False)
    snapshot = Snapshot.open(settings.index_path(settings.index))
    rows = {r["path"]: r for r in snapshot.db.execute("SELECT path, authors, format, abs_path FROM documents")}
    assert set(rows) == {"list.mbox#msg=1", "list.mbox#msg=2", "list.mbox#msg=4", "list.mbox#msg=5"}  # 3: empty
    assert {r["format"] for r in rows.values()} == {"email"}
    assert {r["abs_path"] for r in rows.values()} == {str(archive.resolve())}  # the viewer reads the archive
    assert "bob@example.org" in rows["list.mbox#msg=5"]["authors"] and "bob" not in rows["list.mbox#msg=2"]["authors"]
    sources = [s for (s,) in snapshot.db.execute("SELECT source FROM chunks")]
    assert "list.mbox#msg=2" in sources and all(s.count("#") == 1 for s in sources)
    assert first.failed == [] and first.added == 4

    box = mailbox.mbox(archive)
    late = EmailMessage()
    late["From"] = "Dana Doe <dana@example.org>"
    late["Subject"] = "Re: What programs does Debian provide for managing its packages?"
    late["Message-ID"] = "<q6.dana@example.org>"
    late.set_content("Synaptic is a graphical front end to apt that many newcomers find easier.\n")
    box.add(late)
    box.flush()
    second = ingest([docs], settings, embedder=fake_embedder, progress=False)
    assert (second.added, second.unchanged, second.updated) == (1, 4, 0)
    assert second.embedded_chunks >= 1 and second.embedded_chunks < first.embedded_chunks


def test_a_message_deleted_through_the_api_stays_out_while_the_archive_keeps_it(tmp_path, real, settings,
                                                                                 fake_embedder):
    from ingest.pipeline import ingest
    from ingest.uploads import delete_document

    docs = tmp_path / "docs"
    docs.mkdir()
    thread_mbox(docs / "list.mbox", real)
    ingest([docs], settings, embedder=fake_embedder, progress=False)
    report = delete_document(settings, settings.index, fake_embedder, "list.mbox#msg=2")
    assert report.removed == 1
    again = ingest([docs], settings, embedder=fake_embedder, progress=False)
    assert "list.mbox#msg=2" not in {f.path for f in again.files} and again.documents == 3
