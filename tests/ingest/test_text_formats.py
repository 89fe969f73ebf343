"""Markdown variants (.markdown, .mdx, ERB templates), RTF and EPUB, each built at test time from real
text (the Debian FAQ), plus the broken and empty files of each format failing with their reason."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import pytest

from ingest.discovery import scan
from ingest.parsers import PARSERS, parse_file, parser_for
from ingest.parsers import epub as epub_parser
from ingest.parsers.markdown import parse_source
from km_search.errors import ParseError

EMPTY = "empty file: no text to index"


def write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def same_sections(a, b) -> None:
    assert [(s.heading_path, s.anchor, s.text) for s in a.sections] == [(s.heading_path, s.anchor, s.text) for s in b.sections]


def test_registry_and_longest_suffix_lookup():
    assert {".markdown", ".mdx", ".md.erb", ".html.md.erb", ".rtf", ".epub", ".eml", ".mbox"} <= set(PARSERS)
    from ingest.parsers import erb, markdown

    assert parser_for(Path("source/guides/install.html.md.erb")) is erb.parse
    assert parser_for(Path("NOTES.MD.ERB")) is erb.parse
    assert parser_for(Path("layout.erb")) is None  # a bare ERB template may produce anything
    assert parser_for(Path("index.html.erb")) is None
    assert parser_for(Path("v1.2 release notes.md")) is markdown.parse
    assert parser_for(Path("archive.tar.gz")) is None


def test_discovery_picks_up_multi_part_suffixes(tmp_path):
    for name in ("guide.html.md.erb", "notes.md.erb", "layout.erb", "page.mdx", "letter.rtf", "book.epub"):
        write(tmp_path / name, "x")
    found = scan([tmp_path])
    assert [f.rel for f in found.files] == ["book.epub", "guide.html.md.erb", "letter.rtf", "notes.md.erb", "page.mdx"]
    assert found.skipped == 1
    with pytest.raises(ParseError, match="unsupported file type '.erb'"):
        parse_file(tmp_path / "layout.erb", "layout.erb")


# --- Markdown variants ------------------------------------------------------------------------


def test_dot_markdown_reads_as_markdown(tmp_path, real):
    text = real.markdown(real.chapter("pkgtools"))
    doc = parse_file(write(tmp_path / "pkgtools.markdown", text), "pkgtools.markdown")
    assert doc.format == "markdown"
    assert doc.meta.title == "Chapter 8. The Debian package management tools"
    dpkg = next(s for s in doc.sections if s.heading_path[-1] == "8.1.1. dpkg")
    assert dpkg.anchor == "811-dpkg"
    assert dpkg.text.startswith("This is the main package management program.")


MDX_HEAD = """---
title: The Debian package management tools
tags: [debian, dpkg]
sidebar_position: 8
---
import Callout from '@site/src/components/Callout'
import { Tabs, TabItem } from '@theme/Tabs'

export const toc = [
  { value: 'dpkg', level: 4 },
]

{/* converted from the Debian FAQ, chapter 8 */}
<Intro />
"""


def to_mdx(markdown: str) -> str:
    """Real Markdown wrapped in JSX the way documentation sites write MDX."""
    lines = markdown.split("\n")
    out = []
    for line in lines:
        if line.startswith("#### 8.1.2. APT"):
            out += ['<Callout type="note" title={"APT"} onOpen={() => track("apt", { x: 1 })}>', ""]
        if line.startswith("#### 8.1.3. aptitude"):
            out += ["</Callout>", ""]
        if line.startswith("This is the main package management program."):
            line = line.replace("dpkg", "<Kbd>dpkg</Kbd>", 1)
        out.append(line)
    out += ["```jsx", "<Tabs><TabItem value=\"apt\">apt-get install foo</TabItem></Tabs>", "```", ""]
    return MDX_HEAD + "\n".join(out)


def test_mdx_drops_imports_exports_and_jsx_and_keeps_their_text(tmp_path, real):
    markdown = real.markdown(real.chapter("pkgtools"))
    doc = parse_file(write(tmp_path / "pkgtools.mdx", to_mdx(markdown)), "pkgtools.mdx")
    plain = parse_source(
        "---\ntitle: x\n---\n" + markdown + "\n```jsx\n<Tabs><TabItem value=\"apt\">apt-get install foo</TabItem></Tabs>\n```\n",
        tmp_path / "p.md", "p.md",
    )
    same_sections(doc, plain)  # the JSX went, everything the reader sees stayed where it was
    text = "\n".join(s.text for s in doc.sections)
    for gone in ("import Callout", "@theme", "export const", "level: 4", "Callout", "<Kbd>", "converted from", "track(", "<Intro"):
        assert gone not in text.replace("<Tabs><TabItem", ""), gone
    apt = next(s for s in doc.sections if s.heading_path[-1] == "8.1.2. APT")
    assert apt.anchor == "812-apt" and apt.text.startswith("APT is the Advanced Package Tool")
    assert doc.sections[-1].text.endswith('<Tabs><TabItem value="apt">apt-get install foo</TabItem></Tabs>')  # code stays
    assert doc.meta.title == "The Debian package management tools"
    assert doc.meta.tags == ("debian", "dpkg")
    assert doc.meta.extra["sidebar_position"] == "8"


ERB_FRONT = """---
title: Package management tools
author: Susan G. Kleinmann, Javier Fernández-Sanguino Peña
date: 2024-03-01
project: debian-faq
---
<% content_for :breadcrumbs do %>
  <%= link_to "FAQ", "/faq/" %>
<% end %>
"""


def to_erb(markdown: str) -> str:
    out = []
    for line in markdown.split("\n"):
        if line.startswith("#### 8.1.4. synaptic"):
            out += ["<% if current_page.data.show_gui_tools %>", line, "<%# GUI tools: only on the desktop edition %>"]
            continue
        if line.startswith("#### 8.1.5. tasksel"):
            out += ["<% end %>", ""]
        out.append(line)
    return ERB_FRONT + "\n".join(out) + "\n<%= partial \"footer\", locals: { edit_url: current_page.url } %>\n"



def test_static_site_template_tags_are_dropped_outside_code(tmp_path):
    """Liquid / Jekyll / Eleventy and Hugo tags: a link to a tag reads as its text, paired tags keep
    the text between them, comments go; code, inline code and `{{ expressions }}` stay as written.
    A line of tags alone goes whole, so the paragraph, list or HTML block around it goes on."""
    page = tmp_path / "leave.md"
    page.write_text(
        "# Leave\n\n{%- alert \"Updated\" -%}\nAsk in {% slack_channel \"dc\" %} or read the "
        "[leave policy]({% page '/leave/#annual leave' %}), [runbook]( {{< ref \"x.md\" >}} ) and "
        "[notes]({{% relref %}}).\n{% endalert %}\n{% comment %}\nold text\n{% endcomment %}\n"
        "Use `{% page \"x\" %}` in {{ site.title }}.\n\n```liquid\n{% if a %}{{ b }}{% endif %}\n```\n")
    section = parse_file(page, "leave.md").sections[0]
    assert section.text.split("\n") == [
        'Ask in or read the leave policy, runbook and notes. Use {% page "x" %} in {{ site.title }}.',
        "{% if a %}{{ b }}{% endif %}",
    ]
    office = tmp_path / "office.md"
    office.write_text('<table>\n  <tr>\n    <td><strong>Slack</strong></td>\n    <td>\n      {% slack_channel "dc" %}\n'
                      "    </td>\n  </tr>\n  <tr>\n    <td>Floor 7</td>\n  </tr>\n</table>\n")
    assert parse_file(office, "office.md").sections[0].text.split("\n") == ["Slack", "Floor 7"]

@pytest.mark.parametrize("name", ["pkgtools.md.erb", "pkgtools.html.md.erb"])
def test_erb_templates_lose_their_tags_and_read_as_markdown(tmp_path, real, name):
    markdown = real.markdown(real.chapter("pkgtools"))
    doc = parse_file(write(tmp_path / name, to_erb(markdown)), name)
    same_sections(doc, parse_source(markdown, tmp_path / "p.md", "p.md"))
    assert "<%" not in "\n".join(s.text for s in doc.sections)
    assert doc.format == "markdown"
    assert doc.meta.title == "Package management tools"
    assert doc.meta.authors == ("Susan G. Kleinmann", "Javier Fernández-Sanguino Peña")
    assert doc.meta.created == "2024-03-01" and doc.meta.project == "debian-faq"
    synaptic = next(s for s in doc.sections if s.heading_path[-1] == "8.1.4. synaptic")
    assert synaptic.anchor == "814-synaptic" and synaptic.text.startswith("synaptic is a graphical package manager.")


def test_erb_inline_output_is_dropped_and_escaped_tags_are_literal(tmp_path):
    source = (
        "# Release notes\n\nDebian <%= current_page.data.release %> ships dpkg <%= dpkg_version -%>.\n\n"
        "ERB prints with <%%= expression %>.\n<%\n  multi = 'line'\n%>\nThe end.\n"
    )
    doc = parse_file(write(tmp_path / "notes.md.erb", source), "notes.md.erb")
    assert doc.sections[0].text == "Debian ships dpkg .\nERB prints with <%= expression %>.\nThe end."


# --- RTF --------------------------------------------------------------------------------------


def rtf_escape(text: str) -> str:
    out = []
    for ch in text:
        if ch in "\\{}":
            out.append("\\" + ch)
        elif ord(ch) > 127:
            code = ord(ch)
            out.append(f"\\u{code if code < 32768 else code - 65536}?")
        else:
            out.append(ch)
    return "".join(out)


def to_rtf(paragraphs: list[str], info: str = "") -> str:
    """What a word processor saves: a font table, {\\info}, then \\pard paragraphs, the first in bold."""
    body = [r"{\pard\b " + rtf_escape(paragraphs[0]) + r"\b0\par}"]
    body += [r"{\pard\sa200 " + rtf_escape(p) + r"\par}" for p in paragraphs[1:]]
    return (
        r"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0\froman Times New Roman;}{\f1\fmodern Courier;}}"
        r"{\colortbl;\red0\green0\blue0;}" + info + "\n" + "\n".join(body) + "\n}"
    )


def test_rtf_paragraphs_in_one_section_with_info_metadata(tmp_path, real):
    chapter = real.chapter("basic-defs")
    paragraphs = ["What is Debian GNU/Linux?"] + chapter.sections[1].text.split("\n")
    info = (
        r"{\info{\title The Debian GNU/Linux FAQ: Definitions and overview}{\author Susan G. Kleinmann; "
        r"Javier Fern\'e1ndez-Sanguino Pe\'f1a}{\subject What Debian is}{\keywords debian, faq}"
        r"{\creatim\yr2024\mo3\dy1\hr10\min5}{\revtim\yr2024\mo5\dy2}}"
    )
    doc = parse_file(write(tmp_path / "definitions.rtf", to_rtf(paragraphs, info)), "definitions.rtf")
    assert doc.format == "rtf"
    assert len(doc.sections) == 1
    section = doc.sections[0]
    assert section.heading_path == () and section.anchor is None
    assert section.text.split("\n") == paragraphs
    assert doc.meta.title == "The Debian GNU/Linux FAQ: Definitions and overview"
    assert doc.meta.authors == ("Susan G. Kleinmann", "Javier Fernández-Sanguino Peña")
    assert (doc.meta.created, doc.meta.modified) == ("2024-03-01", "2024-05-02")
    assert doc.meta.tags == ("debian", "faq")
    assert doc.meta.extra == {"subject": "What Debian is"}


def test_rtf_title_is_the_first_line_else_the_file_name(tmp_path, real):
    lines = real.chapter("basic-defs").sections[1].text.split("\n")
    doc = parse_file(write(tmp_path / "a.rtf", to_rtf(["Debian and Linux", *lines[:2]])), "a.rtf")
    assert doc.meta.title == "Debian and Linux"
    doc = parse_file(write(tmp_path / "overview.rtf", to_rtf(lines[:2])), "overview.rtf")
    assert len(lines[0]) >= 100 and doc.meta.title == "overview"


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"", EMPTY),
        (rb"{\rtf1\ansi{\fonttbl{\f0 Times;}}{\info{\title Only a title}}\pard\par}", EMPTY),
        (b"PK\x03\x04 a zip renamed to .rtf", "not an RTF file: it does not start with '{\\rtf'"),
    ],
)
def test_rtf_broken_and_empty_files(tmp_path, content, error):
    with pytest.raises(ParseError) as exc:
        parse_file(write(tmp_path / "broken.rtf", content), "broken.rtf")
    assert str(exc.value).startswith(error)


# --- EPUB -------------------------------------------------------------------------------------

CONTAINER = """<?xml version="1.0" encoding="UTF-8"?>
<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">
  <rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/></rootfiles>
</container>"""

OPF = """<?xml version="1.0" encoding="UTF-8"?>
<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="uid">
  <metadata xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:opf="http://www.idpf.org/2007/opf">
    <dc:identifier id="uid">urn:uuid:8d0c9e4e-debian-faq</dc:identifier>
    <dc:title>The Debian GNU/Linux FAQ</dc:title>
    <dc:creator opf:role="aut">Susan G. Kleinmann</dc:creator>
    <dc:creator>Javier Fernández-Sanguino Peña</dc:creator>
    <dc:date>2024-03-01</dc:date>
    <dc:subject>Debian</dc:subject>
    <dc:subject>Package management</dc:subject>
    <dc:language>en</dc:language>
    <dc:publisher>The Debian Project</dc:publisher>
    <meta property="dcterms:modified">2024-05-02T10:00:00Z</meta>
  </metadata>
  <manifest>
    <item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>
    <item id="ch1" href="text/basic-defs.xhtml" media-type="application/xhtml+xml"/>
    <item id="ch8" href="text/pkgtools.xhtml" media-type="application/xhtml+xml"/>
    <item id="notes" href="notes/pkgtools.xhtml" media-type="application/xhtml+xml"/>
    <item id="css" href="style.css" media-type="text/css"/>
    <item id="cover" href="images/cover.png" media-type="image/png"/>
  </manifest>
  <spine>%s</spine>
</package>"""

SPINE = '<itemref idref="ch1"/><itemref idref="css"/><itemref idref="ch8"/><itemref idref="notes" linear="no"/>'

NOTES = """<?xml version="1.0" encoding="UTF-8"?>
<html xmlns="http://www.w3.org/1999/xhtml"><head><title>Translator's notes</title></head>
<body><a id="top"/><p>The Debian package management tools chapter was checked against dpkg 1.22.</p></body></html>"""


def xhtml_of(html_file: Path) -> bytes:
    """A real FAQ page as an EPUB chapter: an XML declaration, and the heading ids in XHTML's
    self-closing anchors right before the headings, as EPUB converters write them."""
    source = html_file.read_text(encoding="utf-8")
    source = re.sub(r'<(h[1-6])([^>]*)><a id="([^"]+)"></a>', r'<a id="\3"/><\1\2>', source)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + source).encode("utf-8")


def make_epub(path: Path, real, spine: str = SPINE, chapters: dict[str, bytes] | None = None, extra=()) -> Path:
    if chapters is None:
        chapters = {
            "OEBPS/text/basic-defs.xhtml": xhtml_of(real.html("basic-defs")),
            "OEBPS/text/pkgtools.xhtml": xhtml_of(real.html("pkgtools")),
            "OEBPS/notes/pkgtools.xhtml": NOTES.encode(),
        }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        z.writestr("META-INF/container.xml", CONTAINER)
        z.writestr("OEBPS/content.opf", OPF % spine)
        z.writestr("OEBPS/style.css", "body { margin: 0 }")
        for name, data in chapters.items():
            z.writestr(name, data)
        for name, data in extra:
            z.writestr(name, data)
    return path


def test_epub_chapters_in_spine_order_with_book_wide_anchors(tmp_path, real):
    doc = parse_file(make_epub(tmp_path / "debian-faq.epub", real), "debian-faq.epub")
    assert doc.format == "epub"
    chapters = list(dict.fromkeys(s.heading_path[0] for s in doc.sections))
    assert chapters == ["Chapter 1. Definitions and overview", "Chapter 8. The Debian package management tools",
                        "Translator's notes"]  # spine order; the stylesheet in the spine is skipped
    linux = next(s for s in doc.sections if s.heading_path[-1].startswith("1.3. OK, now I know what Debian is"))
    assert linux.anchor == "basic-defs-linux"
    assert linux.text.startswith("In short, Linux is the kernel of a Unix-like operating system.")
    dpkg = next(s for s in doc.sections if s.heading_path[-1] == "8.1.1. dpkg")
    assert dpkg.heading_path[0] == "Chapter 8. The Debian package management tools"
    assert dpkg.anchor == "pkgtools-dpkg"
    assert dpkg.text.startswith("This is the main package management program.")
    footnotes = next(s for s in doc.sections if s.text.startswith("[5] Notice that there are ports"))
    assert footnotes.anchor == "pkgtools"  # the chapter's own id is its name: not 'pkgtools-pkgtools'
    # two chapter files named pkgtools: the second one's anchors are made unique
    notes = doc.sections[-1]
    assert notes.anchor == "pkgtools-2"  # its <a id="top"/> marks no heading
    assert notes.heading_path == ("Translator's notes",)
    assert notes.text == "The Debian package management tools chapter was checked against dpkg 1.22."
    assert not any(s.anchor.startswith("pkgtools-2") for s in doc.sections[:-1])
    assert "margin" not in "\n".join(s.text for s in doc.sections)  # the stylesheet in the spine is not text


def test_epub_dublin_core_metadata(tmp_path, real):
    meta = parse_file(make_epub(tmp_path / "faq.epub", real), "faq.epub").meta
    assert meta.title == "The Debian GNU/Linux FAQ"
    assert meta.authors == ("Susan G. Kleinmann", "Javier Fernández-Sanguino Peña")
    assert (meta.created, meta.modified) == ("2024-03-01", "2024-05-02")
    assert meta.tags == ("Debian", "Package management")
    assert meta.extra == {"language": "en", "publisher": "The Debian Project", "identifier": "urn:uuid:8d0c9e4e-debian-faq"}


def test_epub_self_closing_anchors_before_headings_give_their_ids(tmp_path, real):
    """<a id="dpkg"/><h3>: read as HTML, the <a> would stay open around the heading and lose its id."""
    doc = parse_file(make_epub(tmp_path / "faq.epub", real), "faq.epub")
    anchors = [s.anchor for s in doc.sections if s.heading_path[0].startswith("Chapter 8.")]
    assert anchors[:7] == ["pkgtools-pkgprogs", "pkgtools-dpkg", "pkgtools-apt-get", "pkgtools-aptitude",
                           "pkgtools-synaptic", "pkgtools-tasksel", "pkgtools-dpkg-deb"]


def zip_bytes(members: dict[str, bytes | str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_epub_broken_files(tmp_path, real, monkeypatch):
    cases = {
        "empty.epub": b"",
        "renamed.epub": real.html("pkgtools").read_bytes(),
        "no-package.epub": zip_bytes({"mimetype": "application/epub+zip", "OEBPS/ch1.xhtml": "<p>text</p>"}),
        "no-spine.epub": zip_bytes({"META-INF/container.xml": CONTAINER, "OEBPS/content.opf": OPF % ""}),
        "not-xml.epub": zip_bytes({"META-INF/container.xml": CONTAINER, "OEBPS/content.opf": b"\x00\x01\x02"}),
    }
    make_epub(tmp_path / "cover-only.epub", real, spine='<itemref idref="ch1"/>',
              chapters={"OEBPS/text/basic-defs.xhtml": b'<html><body><img src="../images/cover.png"/></body></html>'})
    make_epub(tmp_path / "drm.epub", real, extra=[("META-INF/encryption.xml", (
        '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" xmlns:enc="http://www.w3.org/2001/04/xmlenc#">'
        '<enc:EncryptedData><enc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>'
        '<enc:CipherData><enc:CipherReference URI="OEBPS/text/pkgtools.xhtml"/></enc:CipherData></enc:EncryptedData>'
        "</encryption>"))])
    for name, data in cases.items():
        write(tmp_path / name, data)
    expected = {
        "empty.epub": EMPTY,
        "renamed.epub": "not a valid EPUB: not a zip package",
        "no-package.epub": "not a valid EPUB: no META-INF/container.xml and no OPF package",
        "no-spine.epub": "not a valid EPUB: its package lists no chapters in the spine",
        "not-xml.epub": "not a valid EPUB: OEBPS/content.opf is not XML",
        "cover-only.epub": EMPTY,
        "drm.epub": "encrypted EPUB (DRM)",
    }
    for name, error in expected.items():
        with pytest.raises(ParseError) as exc:
            parse_file(tmp_path / name, name)
        assert str(exc.value).startswith(error), (name, str(exc.value))
    monkeypatch.setattr(epub_parser, "MAX_UNPACKED_MB", 1)
    with pytest.raises(ParseError, match=r"would unpack to 2 MB, over the 1 MB a book may unpack to \(a zip bomb\?\)"):
        parse_file(write(tmp_path / "bomb.epub", zip_bytes({"META-INF/container.xml": CONTAINER,
                                                              "OEBPS/big.xhtml": b" " * (2 << 20)})), "bomb.epub")


def test_epub_font_obfuscation_is_not_drm(tmp_path, real):
    path = make_epub(tmp_path / "fonts.epub", real, extra=[("META-INF/encryption.xml", (
        '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" xmlns:enc="http://www.w3.org/2001/04/xmlenc#">'
        '<enc:EncryptedData><enc:EncryptionMethod Algorithm="http://www.idpf.org/2008/embedding"/>'
        '<enc:CipherData><enc:CipherReference URI="OEBPS/fonts/serif.otf"/></enc:CipherData></enc:EncryptedData>'
        "</encryption>"))])
    assert parse_file(path, "fonts.epub").meta.title == "The Debian GNU/Linux FAQ"
