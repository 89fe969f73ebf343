"""HTML: the readable content under its headings, with page chrome (navigation, sidebars,
tables of contents, headers and footers) left out so it does not drown the answers.

Tuned on Sphinx and DocBook output. Sections are cut at every heading and at every sectioning
element (<section>, <article>, DocBook/Sphinx <div class="section">), so a DocBook section whose
heading was removed still becomes its own Section. A heading's anchor is its own id, else the id of
an <a> inside or right before it, else the id of the sectioning element it opens; a section without
a heading keeps the anchor of the heading it sits under.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from selectolax.lexbor import LexborHTMLParser, LexborNode

from km_search.errors import ParseError
from km_search.types import Document, DocumentMeta, Section

from ._common import (
    EMPTY_FILE,
    SectionBuilder,
    collapse,
    decode_text,
    iso_date,
    path_of,
    push_heading,
    read_bytes,
    split_names,
    split_tags,
)


_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_SKIP_TAGS = frozenset(
    "head script style noscript template svg math iframe object embed canvas img button select "
    "input textarea -comment".split()
)
_BLOCK_TAGS = frozenset(
    "address article aside blockquote body caption center dd details dialog div dl dt fieldset "
    "figcaption figure form hr legend li main ol p section summary table tbody td tfoot th thead tr ul "
    "pre".split()
)
_SECTION_CLASSES = frozenset(
    "section sect1 sect2 sect3 sect4 sect5 simplesect chapter appendix preface refsect1 refsect2 "
    "refsect3 refsection article part".split()
)
_CHROME_ROLES = frozenset({"navigation", "banner", "contentinfo", "search"})
# Parts of a class name ("page-footer", "navbar_top") that mark page chrome, and whole class names
# or ids. Ids are matched whole only: Sphinx derives ids from heading text ("footer-options").
_CHROME_CLASS_PARTS = frozenset(
    "navbar sidebar sphinxsidebar sphinxsidebarwrapper breadcrumb breadcrumbs related footer "
    "navheader navfooter toc toctree skiplink".split()
)
# "header" and "nav-panel": Texinfo's (texi2any 6 and 7) Next/Previous/Up line above every node
_CHROME_CLASSES = frozenset(
    "list-of-tables list-of-figures list-of-examples list-of-equations skip-link header nav-panel".split()
)
_CHROME_IDS = frozenset(
    "toc sidebar navbar breadcrumb breadcrumbs footer related nav navigation menu site-footer header "
    "site-header masthead".split()
)
_CONTENT_SIDEBAR_MARKS = ("titlepage", "sidebar-title")
_CLASS_SPLIT = re.compile(r"[-_]")
_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)""", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""<\?xml[^>]+encoding\s*=\s*["']([\w.:-]+)""", re.IGNORECASE)
# Browsers read these labels this way (WHATWG Encoding): Latin-1 means cp1252, and a <meta> that
# says UTF-16 in a file that could be read up to it is not UTF-16.
_WHATWG_ALIASES = {
    "iso-8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252", "us-ascii": "cp1252", "ascii": "cp1252",
    "utf-16": "utf-8", "utf-16le": "utf-8", "utf-16be": "utf-8",
}  # fmt: skip
_SPACE = re.compile(r"\s+")
_PILCROW = "\u00b6"

_META_CREATED = ("dcterms.created", "date", "dc.date", "dcterms.date", "article:published_time", "citation_date")
_META_MODIFIED = ("dcterms.modified", "article:modified_time", "last-modified", "dc.date.modified", "revised")


def parse(path: Path, rel_path: str) -> Document:
    data = read_bytes(path)
    tree = LexborHTMLParser(decode_text(data, declared_charset(data)))
    sections, walker = walk_sections(tree)
    if not sections:
        raise ParseError(EMPTY_FILE)
    return Document(path=rel_path, format="html", sections=sections, meta=meta_of(tree, walker, path))


def walk_sections(tree: LexborHTMLParser) -> tuple[tuple[Section, ...], Walker]:
    """The page's sections (none when it has no text) and the walker that read them (for meta_of).
    EPUB chapters and HTML mail bodies are read with it too."""
    root = content_root(tree)
    walker = Walker()
    walker.walk(root)
    sections = walker.sections()
    if not sections:  # our chrome rules ate a page that had text: keep everything but scripts
        walker = Walker(strict=False)
        walker.walk(root)
        sections = walker.sections()
    return sections, walker


def declared_charset(data: bytes) -> str | None:
    """The charset a <meta> or the XML declaration names, read the way browsers read it."""
    head = data[:4096]
    m = _CHARSET.search(head) or _XML_ENCODING.search(head)
    if not m:
        return None
    name = m[1].decode("ascii", "replace").lower()
    return _WHATWG_ALIASES.get(name, name)


def content_root(tree: LexborHTMLParser) -> LexborNode:
    """The page's single <main> (or role=main) when it has one with text, else <body>."""
    mains = tree.css("main, [role=main]")
    if len(mains) == 1 and mains[0].text(deep=True).strip():
        return mains[0]
    return tree.body or tree.root


def classes_of(node: LexborNode) -> list[str]:
    return (node.attributes.get("class") or "").lower().split()


# The '¶' permalinks Sphinx and Texinfo (texi2any 6 and 7) put after headings and index entries,
# and the "[source]" link Sphinx's viewcode puts after an API signature
_LINK_MARKS = frozenset({"headerlink", "copiable-anchor", "copiable-link", "viewcode-link"})


def is_invisible(node: LexborNode) -> bool:
    """Scripts, styles, media and the permalink marks generators append: never text."""
    return node.tag in _SKIP_TAGS or not _LINK_MARKS.isdisjoint(classes_of(node))


def is_sectioning(node: LexborNode) -> bool:
    """<section>/<article>, or the <div class="section"> DocBook and old Sphinx wrap sections in."""
    if node.tag in ("section", "article"):
        return True
    return node.tag == "div" and any(c in _SECTION_CLASSES for c in classes_of(node))


def is_chrome(node: LexborNode, in_content: bool) -> bool:
    """Navigation, banners, sidebars, tables of contents, footers: page furniture, not content.

    Class, id and role rules spare an element that holds an <h1>: that is the content wrapper
    (a "with-sidebar" layout, asciidoc's <div id="header"> with the title), not furniture.
    """
    tag, attrs = node.tag, node.attributes
    if tag == "nav" or is_hidden(attrs):
        return True
    if tag in ("main", "body") or tag in _HEADINGS or is_sectioning(node):
        return False
    if tag in ("header", "footer") and in_content:
        return False  # an <article>'s own header and footer belong to it
    if tag == "footer":
        return True
    if tag == "header" or looks_like_chrome(node):
        return node.css_first("h1") is None
    return False


def is_hidden(attrs: dict) -> bool:
    """Not rendered; hidden="until-found" is collapsed content a reader can search, so it stays."""
    return ("hidden" in attrs and attrs["hidden"] != "until-found") or attrs.get("aria-hidden") == "true"


def looks_like_chrome(node: LexborNode) -> bool:
    attrs = node.attributes
    if (attrs.get("role") or "").lower() in _CHROME_ROLES:
        return True
    for cls in classes_of(node):
        if cls in _CHROME_CLASSES or any(p in _CHROME_CLASS_PARTS for p in _CLASS_SPLIT.split(cls)):
            return not (cls == "sidebar" and is_content_sidebar(node))
    return (attrs.get("id") or "").lower() in _CHROME_IDS


def is_content_sidebar(node: LexborNode) -> bool:
    """DocBook <sidebar> and the Sphinx sidebar directive are asides with content, with a title."""
    return any(node.css_first(f".{mark}") is not None for mark in _CONTENT_SIDEBAR_MARKS)


def swallowed_content(heading: LexborNode) -> bool:
    """An unclosed <h2> swallows the paragraphs after it: such a "heading" is read as content."""
    return heading.css_first("p, table, ul, ol, pre, dl, blockquote") is not None


def anchor_of_heading(node: LexborNode) -> str | None:
    """The heading's id, or that of an <a id/name> inside it or right before it."""
    if node.attributes.get("id"):
        return node.attributes["id"]
    inner = node.css_first("a[id], a[name]")
    if inner is not None:
        return inner.attributes.get("id") or inner.attributes.get("name")
    prev = node.prev
    while prev is not None and prev.is_text_node and not (prev.text_content or "").strip():
        prev = prev.prev
    if prev is not None and prev.tag == "a" and not prev.text(deep=True).strip():
        return prev.attributes.get("id") or prev.attributes.get("name") or None
    return None


def inline_text(node: LexborNode) -> str:
    """All the visible text under a node on one line (headings, table cells)."""
    parts: list[str] = []
    todo = [node]
    while todo:
        current = todo.pop()
        if current.is_text_node:
            parts.append(current.text_content or "")
            continue
        if is_invisible(current):
            continue
        if current.tag in _BLOCK_TAGS or current.tag == "br":
            parts.append(" ")
        todo.extend(reversed(list(current.iter(include_text=True))))
    return collapse("".join(parts).replace(_PILCROW, ""))


@dataclass
class Walker:
    """Walks the DOM once, in document order, feeding a SectionBuilder.

    `strict=False` keeps what the chrome rules would drop (the fallback for unusual pages).
    """

    strict: bool = True
    builder: SectionBuilder = field(default_factory=SectionBuilder)
    headings: tuple[tuple[int, str], ...] = ()
    authors: list[str] = field(default_factory=list)
    first_h1: str | None = None
    _line: list[str] = field(default_factory=list)
    _pre: int = 0
    _content: int = 0  # depth of <article>/<section>/<main>: their header/footer are content
    _pending_anchor: str | None = None
    _saved: list[tuple[tuple[tuple[int, str], ...], str | None]] = field(default_factory=list)

    def walk(self, root: LexborNode) -> None:
        todo: list[tuple[LexborNode, bool]] = [(root, False)]
        while todo:
            node, leaving = todo.pop()
            if leaving:
                self.leave(node)
            elif self.enter(node):
                todo.append((node, True))
                todo.extend((child, False) for child in reversed(list(node.iter(include_text=True))))
        self.end_line()

    def sections(self) -> tuple[Section, ...]:
        try:
            return self.builder.finish()
        except ParseError:
            return ()

    def enter(self, node: LexborNode) -> bool:
        """Handle a node on the way down; False means its subtree is done (or skipped)."""
        if node.is_text_node:
            self.text(node.text_content or "")
            return False
        tag = node.tag
        if is_invisible(node) or (self.strict and is_chrome(node, self._content > 0)):
            return False
        if tag in _HEADINGS and not swallowed_content(node):
            self.heading(node)
            return False
        if tag == "br":
            self._line.append("\n")
        elif tag == "tr" and node.css_first("h1, h2, h3, h4, h5, h6, table") is None:
            self.table_row(node)
            return False
        elif is_sectioning(node):
            self.open_section(node)
        elif tag in _BLOCK_TAGS:
            self.end_line()
        if tag == "pre":
            self._pre += 1
        if tag in ("main", "article", "section"):
            self._content += 1
        return True

    def leave(self, node: LexborNode) -> None:
        tag = node.tag
        if tag == "pre":
            self._pre -= 1
        if tag in ("main", "article", "section"):
            self._content -= 1
        if is_sectioning(node):
            self.close_section()
        elif tag in _BLOCK_TAGS:
            self.end_line()

    def text(self, text: str) -> None:
        if not self._pre:
            text = _SPACE.sub(" ", text)
        if text.strip():
            self._pending_anchor = None
        self._line.append(text)

    def end_line(self) -> None:
        """Close the running block: its inline text becomes line(s) of the current section."""
        if self._line:
            self.builder.add("".join(self._line))
            self._line = []

    def table_row(self, node: LexborNode) -> None:
        self.end_line()
        cells = (inline_text(c) for c in node.iter() if c.tag in ("td", "th"))
        row = " | ".join(c for c in cells if c)
        if row:
            self._pending_anchor = None
            self.builder.add(row)

    def heading(self, node: LexborNode) -> None:
        text = inline_text(node)
        if not text:
            return
        if "author" in classes_of(node):  # DocBook title page: a person, not a section
            self.authors.append(text)
            return
        self.end_line()
        level = _HEADINGS[node.tag]
        if level == 1 and self.first_h1 is None:
            self.first_h1 = text
        anchor = anchor_of_heading(node) or self._pending_anchor
        self._pending_anchor = None
        self.headings = push_heading(self.headings, level, text)
        self.builder.cut(path_of(self.headings), anchor)

    def open_section(self, node: LexborNode) -> None:
        """A section element starts a new Section even without a heading of its own."""
        self.end_line()
        self._saved.append((self.headings, self.builder.anchor))
        anchor = node.attributes.get("id") or self.builder.anchor
        self._pending_anchor = node.attributes.get("id") or None
        self.builder.cut(path_of(self.headings), anchor)

    def close_section(self) -> None:
        """Text after a section belongs to the heading that was open before it."""
        self.end_line()
        self.headings, anchor = self._saved.pop()
        self.builder.cut(path_of(self.headings), anchor)


def meta_of(tree: LexborHTMLParser, walker: Walker, path: Path) -> DocumentMeta:
    """<title> and the usual <meta> names (author, keywords, dates, project, doc-type), <html lang>."""
    metas: dict[str, str] = {}
    for m in tree.css("meta"):
        name = (m.attributes.get("name") or m.attributes.get("property") or "").strip().lower()
        content = collapse(m.attributes.get("content") or "")
        if name and content:
            metas.setdefault(name, content)
    title_node = tree.css_first("title")
    title = collapse(title_node.text(deep=True)) if title_node else ""
    extra: dict[str, str] = {}
    if metas.get("description"):
        extra["description"] = metas["description"]
    root_attrs = tree.root.attributes if tree.root is not None else {}
    lang = root_attrs.get("lang") or root_attrs.get("xml:lang")
    if lang:
        extra["lang"] = lang.strip()
    authors = split_names(metas.get("author", "")) or tuple(dict.fromkeys(walker.authors))
    return DocumentMeta(
        title=title or walker.first_h1 or path.stem,
        authors=authors,
        created=first_date(metas, _META_CREATED),
        modified=first_date(metas, _META_MODIFIED),
        project=metas.get("project"),
        doc_type=metas.get("doc-type") or metas.get("doc_type") or metas.get("type"),
        tags=split_tags(metas.get("keywords", "")),
        status=metas.get("status"),
        extra=extra,
    )


def first_date(metas: dict[str, str], names: tuple[str, ...]) -> str | None:
    return next((d for n in names if (d := iso_date(metas.get(n))) is not None), None)
