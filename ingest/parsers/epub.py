"""EPUB (2 and 3): the chapters of the OPF spine in reading order, each read by the HTML parser, so
headings cut sections as in any web page.

The zip is read directly: META-INF/container.xml names the OPF package, whose manifest and spine
list the chapter files. A section's anchor is "<chapter>-<heading id>" (or "<chapter>" before the
chapter's first heading with an id), with <chapter> the chapter file's stem made unique within the
book: `book.epub#ch03-install` tells a reader which chapter and heading to open. Dublin Core
metadata gives the title, creators (authors), dates and subjects (tags).
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
from pathlib import Path, PurePosixPath
from urllib.parse import unquote

from lxml import etree
from selectolax.lexbor import LexborHTMLParser

from km_search.errors import ParseError
from km_search.types import Document, DocumentMeta, Section

from ._common import (
    EMPTY_FILE,
    collapse,
    decode_text,
    iso_date,
    read_bytes,
    require_text,
)
from .html import declared_charset, walk_sections


MAX_UNPACKED_MB = 256  # as for DOCX: a book of text and images unpacks to well under this
_CONTAINER = "META-INF/container.xml"
_ENCRYPTION = "META-INF/encryption.xml"
_CHAPTER_TYPES = frozenset({"application/xhtml+xml", "text/html", "application/xml"})
# Font obfuscation (IDPF, Adobe) hides fonts only: chapters stay readable.
_FONT_OBFUSCATION = frozenset({"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"})
_VOID = frozenset(["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"])
# XHTML's <a id="x"/> and <div/> are open tags to an HTML parser, which would wrap what follows in them.
_SELF_CLOSING = re.compile(r"<([A-Za-z][\w:.-]*)((?:\s(?:[^<>\"']|\"[^\"]*\"|'[^']*')*?)?)\s*/>")
_ANCHOR_DROP = re.compile(r"[^\w.-]+")


def parse(path: Path, rel_path: str) -> Document:
    data = read_bytes(path)
    try:
        book = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as exc:
        raise ParseError("not a valid EPUB: not a zip package (another format renamed?)") from exc
    with book:
        check_unpacked_size(book)
        names = {info.filename: info.filename for info in book.infolist()}
        names.update({n.lower(): n for n in list(names)})
        opf_path = package_path(book, names)
        opf = read_xml(book, names, opf_path)
        base = posixpath.dirname(opf_path)
        chapters = spine_files(opf, base)
        if not chapters:
            raise ParseError("not a valid EPUB: its package lists no chapters in the spine")
        check_not_encrypted(book, names, chapters)
        meta = meta_of(opf, path)
        sections: list[Section] = []
        stems: set[str] = set()
        for chapter in chapters:
            member = names.get(chapter) or names.get(chapter.lower())
            if member is None:
                continue  # a spine entry without its file: skip it, keep the rest of the book
            stem = unique_stem(chapter, stems)
            sections.extend(chapter_sections(read_member(book, member), stem, meta.title))
    try:
        kept = require_text(sections)
    except ParseError:
        raise ParseError(f"{EMPTY_FILE} (its {len(chapters)} spine chapters hold none)") from None
    return Document(path=rel_path, format="epub", sections=kept, meta=meta)


def check_unpacked_size(book: zipfile.ZipFile) -> None:
    """Refuse a zip bomb before inflating anything (zipfile never inflates past the declared sizes)."""
    total = sum(item.file_size for item in book.infolist())
    if total > MAX_UNPACKED_MB * 1024 * 1024:
        raise ParseError(
            f"not a valid EPUB: it would unpack to {total / 1048576:,.0f} MB, over the {MAX_UNPACKED_MB} MB "
            "a book may unpack to (a zip bomb?)"
        )


def read_member(book: zipfile.ZipFile, name: str) -> bytes:
    try:
        return book.read(name)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError, EOFError) as exc:
        raise ParseError(f"not a valid EPUB: cannot unpack {name}: {exc}") from exc


def read_xml(book: zipfile.ZipFile, names: dict[str, str], name: str) -> etree._Element:
    """An XML member, read without DTDs, entities or network access (a book is untrusted input)."""
    member = names.get(name) or names.get(name.lower())
    if member is None:
        raise ParseError(f"not a valid EPUB: {name} is missing")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, recover=True)
    try:
        root = etree.fromstring(read_member(book, member), parser=parser)
    except etree.XMLSyntaxError as exc:
        raise ParseError(f"not a valid EPUB: {name} is not XML: {exc}") from exc
    if root is None:
        raise ParseError(f"not a valid EPUB: {name} is not XML")
    return root


def local(el: etree._Element) -> str:
    return etree.QName(el).localname.lower() if isinstance(el.tag, str) else ""


def elements(root: etree._Element, name: str) -> list[etree._Element]:
    """Descendants by local name: OPF files differ in namespaces and prefixes (or have none)."""
    return [el for el in root.iter() if local(el) == name]


def package_path(book: zipfile.ZipFile, names: dict[str, str]) -> str:
    """The OPF's path from container.xml; the first .opf in the zip when that file is missing."""
    if _CONTAINER.lower() in names:
        for rootfile in elements(read_xml(book, names, _CONTAINER), "rootfile"):
            full = rootfile.get("full-path")
            if full and (rootfile.get("media-type") or "application/oebps-package+xml").endswith("package+xml"):
                return unquote(full).lstrip("/")
    opfs = sorted(n for n in names.values() if n.lower().endswith(".opf"))
    if not opfs:
        raise ParseError("not a valid EPUB: no META-INF/container.xml and no OPF package")
    return opfs[0]


def spine_files(opf: etree._Element, base: str) -> list[str]:
    """The chapter files in reading order: spine idrefs resolved through the manifest, paths from the zip root."""
    manifest = {}
    for item in elements(opf, "item"):
        if item.get("id") and item.get("href"):
            manifest[item.get("id")] = (item.get("href"), (item.get("media-type") or "").lower())
    out: list[str] = []
    for ref in elements(opf, "itemref"):
        href, media = manifest.get(ref.get("idref") or "", (None, ""))
        if href is None or (media and media not in _CHAPTER_TYPES):
            continue
        name = posixpath.normpath(posixpath.join(base, unquote(href.split("#", 1)[0])))
        if name not in out:
            out.append(name)
    return out


def check_not_encrypted(book: zipfile.ZipFile, names: dict[str, str], chapters: list[str]) -> None:
    """A DRM-protected book has its chapters encrypted: say so rather than index ciphertext."""
    if _ENCRYPTION.lower() not in names:
        return
    encrypted: set[str] = set()
    for data in elements(read_xml(book, names, _ENCRYPTION), "encrypteddata"):
        methods = [m.get("Algorithm") for m in elements(data, "encryptionmethod")]
        if methods and all(m in _FONT_OBFUSCATION for m in methods):
            continue
        encrypted.update(unquote(r.get("URI") or "").lstrip("/") for r in elements(data, "cipherreference"))
    if any(c in encrypted for c in chapters):
        raise ParseError("encrypted EPUB (DRM): its chapters cannot be read; index a DRM-free copy")


def unique_stem(chapter: str, seen: set[str]) -> str:
    """The chapter file's stem as an anchor part, unique within the book ('ch01', 'ch01-2')."""
    base = _ANCHOR_DROP.sub("-", PurePosixPath(chapter).stem).strip("-") or "chapter"
    stem, n = base, 1
    while stem in seen:
        n += 1
        stem = f"{base}-{n}"
    seen.add(stem)
    return stem


def chapter_sections(data: bytes, stem: str, book_title: str) -> list[Section]:
    """One chapter's sections, anchored within the book; a chapter without text (a cover) gives none."""
    source = decode_text(data, declared_charset(data))
    tree = LexborHTMLParser(_SELF_CLOSING.sub(open_and_close, source))
    sections, _ = walk_sections(tree)
    title_node = tree.css_first("title")
    chapter_title = collapse(title_node.text(deep=True)) if title_node else ""
    fallback = (chapter_title,) if chapter_title and chapter_title != book_title else ()
    return [
        Section(s.text, s.heading_path or fallback, chapter_anchor(stem, s.anchor), s.page)
        for s in sections
    ]


def chapter_anchor(stem: str, anchor: str | None) -> str:
    """'<chapter>-<id>'; just '<chapter>' before the first id and where the id is the chapter's name."""
    return f"{stem}-{anchor}" if anchor and anchor != stem else stem


def open_and_close(m: re.Match) -> str:
    tag = m[1]
    return m[0] if tag.lower() in _VOID else f"<{tag}{m[2]}></{tag}>"


def meta_of(opf: etree._Element, path: Path) -> DocumentMeta:
    """Dublin Core: title, creators, dates (EPUB 2 opf:event, EPUB 3 dcterms:modified), subjects."""
    metadata = next(iter(elements(opf, "metadata")), opf)

    def texts(name: str) -> list[str]:
        values = (collapse("".join(el.itertext())) for el in elements(metadata, name))
        return list(dict.fromkeys(v for v in values if v))

    created = modified = None
    for el in elements(metadata, "date"):
        event = next((v for k, v in el.attrib.items() if etree.QName(k).localname == "event"), "").lower()
        date = iso_date(collapse("".join(el.itertext())))
        if event == "modification":
            modified = modified or date
        elif event in ("", "publication", "creation", "original-publication"):
            created = created or date
    for el in elements(metadata, "meta"):
        if el.get("property") == "dcterms:modified":
            modified = iso_date(collapse("".join(el.itertext()))) or modified
    extra = {}
    for name in ("language", "publisher", "identifier"):
        values = texts(name)
        if values:
            extra[name] = values[0]
    titles = texts("title")
    return DocumentMeta(
        title=titles[0] if titles else path.stem,
        authors=tuple(texts("creator")),
        created=created,
        modified=modified,
        tags=tuple(texts("subject")),
        extra=extra,
    )
