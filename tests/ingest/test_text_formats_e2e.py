"""End to end through the public interface: `km ingest` a folder holding one file of each format added
with the Markdown variants, RTF, EPUB and mail parsers (built from real Debian FAQ text), serve it
with `km serve`, and find each file's passage over HTTP with the right deep link in its source."""

from __future__ import annotations

import json
import mailbox
import os
import subprocess
import urllib.parse
import urllib.request
import zipfile
from email.message import EmailMessage
from pathlib import Path

import pytest
from helpers import KM, start_server

from ingest.parsers import parse_file

pytestmark = pytest.mark.slow


def section(doc, heading_start: str):
    return next(s for s in doc.sections if s.heading_path and s.heading_path[-1].startswith(heading_start))


def rtf(paragraphs: list[str]) -> str:
    def escape(text: str) -> str:
        text = text.replace("\\", "\\\\").replace("{", "\\{").replace("}", "\\}")
        return "".join(c if ord(c) < 128 else f"\\u{ord(c)}?" for c in text)

    body = "\n".join(r"{\pard " + escape(p) + r"\par}" for p in paragraphs)
    return r"{\rtf1\ansi\ansicpg1252{\fonttbl{\f0 Times New Roman;}}{\info{\title Debian definitions}}" + "\n" + body + "\n}"


def epub(path: Path, chapters: dict[str, bytes]) -> None:
    items = "".join(f'<item id="c{i}" href="{n}" media-type="application/xhtml+xml"/>' for i, n in enumerate(chapters))
    spine = "".join(f'<itemref idref="c{i}"/>' for i in range(len(chapters)))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        z.writestr("META-INF/container.xml", '<container xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
                   '<rootfiles><rootfile full-path="content.opf" media-type="application/oebps-package+xml"/>'
                   "</rootfiles></container>")
        z.writestr("content.opf", '<package xmlns="http://www.idpf.org/2007/opf" version="3.0"><metadata '
                   'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>The Debian GNU/Linux FAQ</dc:title>'
                   "<dc:creator>Susan G. Kleinmann</dc:creator></metadata>"
                   f"<manifest>{items}</manifest><spine>{spine}</spine></package>")
        for name, data in chapters.items():
            z.writestr(name, data)


def mail(sender: str, subject: str, body: str, msg_id: str, date: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["Subject"], msg["Message-ID"], msg["Date"] = sender, subject, msg_id, date
    msg.set_content(body)
    return msg


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, real):
    """The folder, and per query the deep link its answer must come back with."""
    root = tmp_path_factory.mktemp("formats")
    docs = root / "docs"
    for folder in ("handbook", "site", "notes", "books", "mail"):
        (docs / folder).mkdir(parents=True)
    expected: dict[str, str] = {}

    # the source of a static site: Liquid (Jekyll, Eleventy) and Hugo template tags around real text
    (docs / "handbook" / "customizing.markdown").write_text(
        '{% alert "Read this first" %}\nSee [the support chapter]({% page "/faq/support/" %}) and '
        '[kernel packages]({{< ref "kernel.md" >}}) before you customize the console.\n{% endalert %}\n'
        "{% comment %}draft: rewrite this page for trixie{% endcomment %}\n\n"
        + real.markdown(real.chapter("customizing"))
        + "\nA template that sets the font:\n\n```\n{% raw %}{{ console_font }}{% endraw %}\n```\n")
    expected["How do I load a console font on startup the Debian way?"] = (
        "handbook/customizing.markdown#113-how-do-i-load-a-console-font-on-startup-the-debian-way")

    pkgtools = real.markdown(real.chapter("pkgtools"))
    (docs / "handbook" / "pkgtools.mdx").write_text(
        "import Callout from '@site/src/components/Callout'\n\n<Callout type=\"note\">\n\n" + pkgtools + "\n</Callout>\n")
    expected["How do I display the files of an installed package?"] = (
        "handbook/pkgtools.mdx#84-how-do-i-display-the-files-of-an-installed-package")

    kernel = real.markdown(real.chapter("kernel"))
    (docs / "site" / "kernel.html.md.erb").write_text(
        "---\ntitle: Debian and the kernel\n---\n<% content_for :nav do %>\n<%= partial 'nav' %>\n<% end %>\n" + kernel)
    expected["Can I safely de-install an old kernel package?"] = (
        "site/kernel.html.md.erb#104-can-i-safely-de-install-an-old-kernel-package-and-if-so-how")

    definitions = real.chapter("basic-defs")
    paragraphs = [line for s in definitions.sections for line in (s.heading_path[-1], *s.text.split("\n"))]
    (docs / "notes" / "definitions.rtf").write_text(rtf(paragraphs))
    expected["How is the name Debian pronounced?"] = "notes/definitions.rtf"

    epub(docs / "books" / "debian-faq.epub", {name: real.html(name).read_bytes() for name in ("support", "compatibility")})
    expected["How do I report a bug in Debian?"] = "books/debian-faq.epub#support-bugreport"
    expected["On what hardware architectures does Debian run?"] = "books/debian-faq.epub#compatibility-arches"

    uptodate = real.chapter("uptodate")
    msg = mail("Ann Example <ann@example.org>", "Re: automatic updates",
               section(uptodate, "9.5.").text + "\n\nOn Mon, 4 Mar 2024, Bob wrote:\n> Can I automatically update?\n",
               "<r1@example.org>", "Mon, 04 Mar 2024 10:00:00 +0000")
    msg.add_attachment(real.html("getting-debian").read_bytes(), maintype="text", subtype="html",
                       filename="getting-debian.en.html")
    (docs / "mail" / "reply.eml").write_bytes(bytes(msg))
    expected["Can I automatically update the system?"] = "mail/reply.eml"
    expected["Where can I get the Debian installation images?"] = "mail/reply.eml#attachment=getting-debian.en.html"

    box = mailbox.mbox(docs / "mail" / "list.mbox")
    box.add(mail("Ann Example <ann@example.org>", "Keeping .deb files", section(uptodate, "9.3.").text,
                 "<m1@example.org>", "Tue, 05 Mar 2024 09:00:00 +0000"))
    box.add(mail("Bob Builder <bob@example.org>", "Downloading updates once", section(uptodate, "9.6.").text,
                 "<m2@example.org>", "Tue, 05 Mar 2024 10:00:00 +0000"))
    box.flush()
    box.close()
    expected["I have several machines; how can I download the updates only one time?"] = "mail/list.mbox#msg=2"

    for link in expected.values():  # the links are what the parsers give: check the fixture itself
        path, _, anchor = link.partition("#")
        assert (anchor or None) in {s.anchor for s in parse_file(docs / path, path).sections}, link
    env = {**os.environ, "KM_INDEX_DIR": str(root / "indexes"), "HF_HUB_OFFLINE": "1", "KM_AUTH": "none"}
    return root, docs, env, expected


@pytest.fixture(scope="module")
def served(corpus):
    root, docs, env, expected = corpus
    run = subprocess.run([*KM, "ingest", str(docs), "--index", "formats", "--json"],
                         capture_output=True, text=True, env=env, timeout=600, check=False)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    base, proc = start_server("formats", env, root / "serve.log")
    yield report, base, expected
    proc.terminate()
    proc.wait(timeout=30)


def test_every_new_format_is_ingested(served):
    report, _, _ = served
    assert report["failed"] == []
    assert report["skipped"] == 0 and report["skipped_files"] == []  # nothing of the folder left unread
    indexed = {f["path"] for f in report["files"] if f["status"] == "added"}
    assert indexed == {"handbook/customizing.markdown", "handbook/pkgtools.mdx", "site/kernel.html.md.erb",
                       "notes/definitions.rtf", "books/debian-faq.epub", "mail/reply.eml",
                       "mail/list.mbox#msg=1", "mail/list.mbox#msg=2"}  # a mailbox: one document per message


def search(base: str, query: str, k: int = 5) -> list[dict]:
    with urllib.request.urlopen(f"{base}/search?{urllib.parse.urlencode({'q': query, 'k': k})}", timeout=60) as r:
        return json.load(r)["hits"]


def test_static_site_template_tags_are_not_indexed_but_the_text_they_wrap_is(served):
    """Liquid and Hugo tags are what a site generator replaces: a link to one reads as its text, a
    comment block is gone, and a code block keeps its tags as written."""
    _, base, _ = served
    intro = next(h for h in search(base, "see the support chapter and kernel packages before you customize the console")
                 if h["doc_path"] == "handbook/customizing.markdown")
    assert "See the support chapter and kernel packages before you customize the console." in intro["text"]
    hits = [h for q in ("draft rewrite this page for trixie", "page alert endalert ref kernel.md")
            for h in search(base, q, 10) if h["doc_path"] == "handbook/customizing.markdown"]
    code_line = "{% raw %}{{ console_font }}{% endraw %}"
    assert hits and not any(mark in h["text"].replace(code_line, "") for h in hits
                            for mark in ("{%", "%}", "{{<", "draft:", "/faq/support/"))
    assert any(code_line in h["text"] for h in search(base, "a template that sets the font console_font raw endraw", 10)
               if h["doc_path"] == "handbook/customizing.markdown")


def test_each_format_is_found_with_its_deep_link(served):
    _, base, expected = served
    misses = {}
    for query, link in expected.items():
        url = f"{base}/search?{urllib.parse.urlencode({'q': query, 'k': 5})}"
        with urllib.request.urlopen(url, timeout=60) as r:
            hits = json.load(r)["hits"]
        top_documents = [h["doc_path"] for h in hits[:3]]
        if not any(link == d or link.startswith(d + "#") for d in top_documents) or link not in [h["source"] for h in hits]:
            misses[query] = (link, [h["source"] for h in hits])
    assert not misses, misses
