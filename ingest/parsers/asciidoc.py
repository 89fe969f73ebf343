"""AsciiDoc: the subset real documents use, read the way Asciidoctor reads it.

No maintained Python AsciiDoc parser exists (asciidoc-py and asciidoc3 convert to HTML/DocBook and
run includes; the others are alphas), so this is a line reader for:
- the header: `= Title`, the author line (`Name <email>; Name <email>`), the revision line
  (`v1.2, 2024-03-01: remark`) and attribute entries (`:name: value`, continued with ` \\`,
  unset with `:name!:`). Known ones become metadata (:author(s):, :revdate:, :status:/:state:,
  :tags:/:keywords:, :project:, :type:), other values go to `extra`;
- YAML front matter when a file has it (Jekyll/Antora);
- section titles `==` to `======` (and Markdown-style `##`), with the id Asciidoctor gives them:
  an explicit `[[id]]`, `[#id]` or trailing `[[id]]` anchor, else `_` + the lower-cased title with
  every run of spaces, `_`, `.` and `-` turned into `_` and other punctuation dropped (honouring
  :idprefix:, :idseparator: and :sectids!:), repeats numbered `_2`, `_3` (Section.generate_id);
- paragraphs, lists, description lists, listing/literal blocks (`----`, `....`, indented),
  tables (`|===`, `,===`, `:===`; one ' | '-joined line per row), block titles and admonitions;
- comments (`//`, `////` blocks), include:: lines, block macros (image::, toc::) dropped;
  ifdef/ifndef evaluated against the attributes; attribute references `{name}` substituted and
  inline markup (emphasis marks, links, cross references, macros) reduced to the text a reader sees.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from km_search.types import Document

from ._common import (
    SectionBuilder,
    collapse,
    decode_text,
    path_of,
    push_heading,
    read_bytes,
)
from .markdown import meta_from_front_matter, split_front_matter


_TITLE = re.compile(r"^(={1,6}|#{1,6})[ \t]+(\S.*)$")  # trailing marks ('== Title ==') cut by title_of
_ATTR_ENTRY = re.compile(r"^:(!?[\w][\w-]*!?):(?:[ \t]+(.*))?$")
_AUTHOR_LINE = re.compile(r"^[\w][\w\-'.]*(?: +[\w][\w\-'.]*){0,2}(?: +<[^>]+>)?(?:; *[\w].*)?$")
_BLOCK_ANCHOR = re.compile(r"^\[\[([A-Za-z_:][\w:.-]*)(?:, *.*)?\]\]$")
_TITLE_ANCHOR = re.compile(r"[ \t]+\[\[([A-Za-z_:][\w:.-]*)(?:, *[^\]]*)?\]\]$")
_BLOCK_ATTRS = re.compile(r"^\[(?:|[\w.#%{,\"'=].*)\]$")
_BLOCK_TITLE = re.compile(r"^\.([^\s.].*)$")
_LIST_ITEM = re.compile(r"^[ \t]*(\*{1,5}|-|\.{1,5}|\d{1,3}\.|[a-zA-Z]\.|[ivxIVX]+\))[ \t]+(.*)$")
_CHECKBOX = re.compile(r"^\[[ xX*]\][ \t]+")
_DLIST = re.compile(r"^[ \t]*(.*?\S)(:{2,4}|;;)(?:[ \t]+(.*))?$")
_BLOCK_MACRO = re.compile(r"^(?:image|video|audio|toc|include|embed)::\S*\[.*\]$")
_CONDITIONAL = re.compile(r"^(ifdef|ifndef|ifeval|endif)::([^\[]*)\[(.*)\]$")
_COMMENT_BLOCK = re.compile(r"^/{4,}$")
_LINE_COMMENT = re.compile(r"^//(?!//)")
_VERBATIM = re.compile(r"^(-{4,}|\.{4,}|\+{4,}|`{3}.*)$")  # listing, literal, passthrough, fenced code
_COMPOUND = re.compile(r"^(={4,}|\*{4,}|_{4,}|--)$")  # example, sidebar, quote, open block: content
_TABLE = re.compile(r"^([|,:!])={3,}$")
_THEMATIC = re.compile(r"^(?:'{3,}|<{3,}|-{3}|\*{3})$")
_ATTR_REF = re.compile(r"(?<!\\)\{([\w][\w-]*)\}")
_CELL_SPEC = re.compile(r"(?:^|[ \t]+)((?:\d+\*|\d*(?:\.\d+)?\+)?(?:[<^>]?\.[<^>]|[<^>])?[adehlmsv]?)$")
_SPAN = re.compile(r"^(?:(\d+)\*|(\d+)(?:\.\d+)?\+)")
_TAG = re.compile(r"<[^<>]{0,1000}>")
_PROCESSING_ATTRS = frozenset(
    "toc toc-title toclevels toc-placement sectnums sectnumlevels numbered sectanchors sectlinks "
    "icons iconsdir imagesdir source-highlighter highlightjs-theme pygments-style rouge-style "
    "experimental nofooter noheader linkcss stylesheet stylesdir doctype encoding idprefix "
    "idseparator sectids showtitle notitle hardbreaks hardbreaks-option table-caption "
    "figure-caption example-caption appendix-caption xrefstyle last-update-label "
    "outlinelevels chapter-signifier part-signifier leveloffset skip-front-matter webfonts "
    "docinfo kroki-server-url stem includedir data-uri allow-uri-read".split()
)
_BUILTIN_ATTRS = {
    "empty": "", "blank": "", "sp": " ", "nbsp": " ", "zwsp": "", "wj": "", "apos": "'",
    "quot": '"', "lsquo": "‘", "rsquo": "’", "ldquo": "“", "rdquo": "”", "deg": "°",
    "plus": "+", "brvbar": "¦", "vbar": "|", "amp": "&", "lt": "<", "gt": ">", "startsb": "[",
    "endsb": "]", "caret": "^", "asterisk": "*", "tilde": "~", "backslash": "\\", "backtick": "`",
    "two-colons": "::", "two-semicolons": ";;", "cpp": "C++", "pp": "++", "cxx": "C++",
}  # fmt: skip

# Inline markup -> the text a reader sees, applied in this order.
_INLINE: list[tuple[re.Pattern[str], str]] = [  # every span bounded: no quadratic backtracking on hostile lines
    (re.compile(r"\bpass:[a-z,]{0,40}\[([^\]]{0,500})\]"), r"\1"),
    (re.compile(r"\+\+\+(.{0,500}?)\+\+\+"), r"\1"),
    (re.compile(r"\(\(\((.{0,200}?)\)\)\)"), ""),  # concealed index terms
    (re.compile(r"\(\((.{0,200}?)\)\)"), r"\1"),  # visible index terms
    (re.compile(r"\[\[[A-Za-z_:][\w:.-]{0,200}(?:,[^\]]{0,200})?\]\]"), ""),  # inline anchors
    (re.compile(r"\banchor:[\w:.-]{1,200}\[([^\]]{0,300})\]"), r"\1"),
    (re.compile(r"\bimage:[^\s\[]{1,500}\[([^\],]{0,300})[^\]]{0,300}\]"), r"\1"),
    (re.compile(r"\bfootnote(?:ref)?:[\w-]{0,100}\[([^\]]{0,1000})\]"), r" (\1)"),
    (re.compile(r"\b(?:kbd|btn):\[([^\]]{0,200})\]"), r"\1"),
    (re.compile(r"\bmenu:([^\[\s]{1,200})\[([^\]]{0,300})\]"), r"\1 > \2"),
    (re.compile(r"\bxref:([^\[\s]{1,500})\[([^\]]{0,300})\]"), "XREF"),
    (re.compile(r"<<([^,<>]{1,200}?)(?:, *([^<>]{1,300}))?>>"), "XREF"),
    (re.compile(r"\b(?:link|mailto):([^\[\s]{1,500})\[([^\]]{0,300})\]"), "LINK"),
    (re.compile(r"\b((?:https?|ftp|irc|file)://[^\s\[]{1,500})\[([^\]]{0,300})\]"), "LINK"),
    (re.compile(r"\[[.#%][^\]]{0,200}\](?=[#*_`])"), ""),  # [.role]#text#
    (re.compile(r"\*\*(.{1,500}?)\*\*"), r"\1"),
    (re.compile(r"__(.{1,500}?)__"), r"\1"),
    (re.compile(r"``(.{1,500}?)``"), r"\1"),
    (re.compile(r"##(.{1,500}?)##"), r"\1"),
    (re.compile(r"(?<![\w*])\*(\S|\S.{0,300}?\S)\*(?![\w*])"), r"\1"),
    (re.compile(r"(?<![\w_])_(\S|\S.{0,300}?\S)_(?![\w_])"), r"\1"),
    (re.compile(r"(?<![\w`])`\+?(\S|\S.{0,300}?\S)\+?`(?![\w`])"), r"\1"),
    (re.compile(r"(?<![\w#&])#(\S|\S.{0,300}?\S)#(?![\w#])"), r"\1"),
    (re.compile(r"\^(\S{1,100}?)\^"), r"\1"),
    (re.compile(r"(?<!~)~(\S{1,100}?)~(?!~)"), r"\1"),
    (re.compile(r"\\([*_`#\[{<])"), r"\1"),
]


def parse(path: Path, rel_path: str) -> Document:
    source = decode_text(read_bytes(path)).replace("\r\n", "\n").replace("\r", "\n")
    front, body = split_front_matter(source)
    if not front:
        body = source
    reader = Reader(body.split("\n"))
    reader.read()
    fields: dict[str, Any] = {**front, **reader.header_fields()}
    title = reader.doctitle or scalar(fields.get("title")) or reader.first_title or path.stem
    fields["title"] = title
    meta = meta_from_front_matter(fields, fallback_title=title)
    return Document(path=rel_path, format="asciidoc", sections=reader.builder.finish(), meta=meta)


def title_of(m: re.Match[str]) -> str:
    """The text of a section title line, without the closing marks of the symmetric form '== Title =='."""
    text = m[2].rstrip()
    if text.endswith(m[1]) and text[: -len(m[1])].endswith((" ", "\t")):
        text = text[: -len(m[1])].rstrip()
    return text


def scalar(value: Any) -> str | None:
    return collapse(str(value)) if isinstance(value, str | int | float) else None


def generate_id(title: str, attrs: dict[str, str], taken: set[str]) -> str:
    """Asciidoctor's Section.generate_id for an already converted title (markup reduced to text)."""
    pre = attrs.get("idprefix", "_")
    sep = attrs.get("idseparator", "_")
    sep = sep[:1]
    text = re.sub(r"&(?:[a-z][a-z]+\d{0,2}|#\d\d\d{0,4}|#x[\da-f]{3,4});|[^ \w\-.]", "", _TAG.sub("", title).lower())
    gen = pre + text
    if not sep:
        gen = gen.replace(" ", "")
    else:
        squeeze = " .-" if sep in "-." else f" {re.escape(sep)}.-"
        gen = re.sub(f"[{squeeze}]+", sep, gen)
        if gen.endswith(sep):
            gen = gen[:-1]
        if not pre and gen.startswith(sep):
            gen = gen[1:]
    if gen not in taken:
        return gen
    n = 2
    while f"{gen}{sep}{n}" in taken:
        n += 1
    return f"{gen}{sep}{n}"


@dataclass
class Reader:
    """Reads the lines once: the header, then blocks into a SectionBuilder."""

    lines: list[str]
    attrs: dict[str, str] = field(default_factory=dict)
    header: dict[str, str] = field(default_factory=dict)  # attribute entries of the header, in order
    doctitle: str | None = None
    first_title: str | None = None
    author_line: str | None = None
    revision_line: str | None = None
    builder: SectionBuilder = field(default_factory=SectionBuilder)
    stack: tuple[tuple[int, str], ...] = ()
    taken: set[str] = field(default_factory=set)
    _para: list[str] = field(default_factory=list)
    _pending_id: str | None = None
    _pending_attrs: list[str] = field(default_factory=list)
    _list_counts: dict[str, int] = field(default_factory=dict)

    # --- header ------------------------------------------------------------------------------

    def read(self) -> None:
        lines = self.preprocess(self.lines)
        i = self.read_header(lines)
        self.read_blocks(lines, i)

    def preprocess(self, lines: list[str]) -> list[str]:
        """Drop include:: lines and the parts of ifdef/ifndef the attributes rule out (Asciidoctor's
        preprocessor does this everywhere, verbatim blocks included)."""
        out: list[str] = []
        skipping: list[bool] = []  # one entry per open conditional: does it hide its content?
        attrs: dict[str, str] = {}
        for line in lines:
            m = _CONDITIONAL.match(line)
            if m:
                kind, names, inline = m[1], m[2], m[3]
                if kind == "endif":
                    if skipping:
                        skipping.pop()
                    continue
                if kind == "ifeval":
                    keep = True  # expressions are not evaluated: keep the content
                else:
                    wanted = [n.strip().lower() for n in re.split(r"[,+]", names) if n.strip()]
                    present = [n in attrs for n in wanted]
                    hit = (all(present) if "+" in names else any(present)) if wanted else False
                    keep = hit if kind == "ifdef" else not hit
                if inline:
                    if keep and not any(skipping):
                        out.append(inline)
                    continue
                skipping.append(not keep)
                continue
            if any(skipping):
                continue
            if line.startswith("include::"):
                continue
            entry = _ATTR_ENTRY.match(line)
            if entry:
                name = entry[1]
                if name.startswith("!") or name.endswith("!"):
                    attrs.pop(name.strip("!").lower(), None)
                else:
                    attrs[name.lower()] = entry[2] or ""
            out.append(line)
        return out

    def read_header(self, lines: list[str]) -> int:
        """Attribute entries, comments and the title block at the top; the index of the body's first line."""
        i = 0
        n = len(lines)
        while i < n:  # before the title: blank lines, comments, attribute entries
            line = lines[i]
            if not line.strip() or _LINE_COMMENT.match(line):
                i += 1
            elif _COMMENT_BLOCK.match(line):
                i = self.skip_comment_block(lines, i)
            elif _ATTR_ENTRY.match(line):
                i = self.attribute_entry(lines, i, header=True)
            else:
                break
        m = _TITLE.match(lines[i]) if i < n else None
        if not m or len(m[1]) != 1:
            return i
        raw_title = title_of(m)
        i += 1
        if i < n and lines[i].strip() and not _ATTR_ENTRY.match(lines[i]) and not _LINE_COMMENT.match(lines[i]):
            if _AUTHOR_LINE.match(lines[i].strip()):
                self.author_line = lines[i].strip()
                i += 1
                if i < n and lines[i].strip() and not _ATTR_ENTRY.match(lines[i]) and not _LINE_COMMENT.match(lines[i]):
                    self.revision_line = lines[i].strip()
                    i += 1
        while i < n and lines[i].strip():
            if _ATTR_ENTRY.match(lines[i]):
                i = self.attribute_entry(lines, i, header=True)
            elif _LINE_COMMENT.match(lines[i]) and not _COMMENT_BLOCK.match(lines[i]):
                i += 1
            elif _COMMENT_BLOCK.match(lines[i]):
                i = self.skip_comment_block(lines, i)
            else:
                break
        self.doctitle = self.inline(raw_title) or None  # after the header: its attributes apply to the title
        if self.author_line:
            self.attrs.setdefault("author", self.author_line)
        if self.doctitle:
            self.attrs.setdefault("doctitle", self.doctitle)
        return i

    def attribute_entry(self, lines: list[str], i: int, header: bool) -> int:
        m = _ATTR_ENTRY.match(lines[i])
        assert m is not None
        name, value = m[1], (m[2] or "")
        i += 1
        while (value.endswith(" \\") or value.endswith(" +")) and i < len(lines):  # continued value
            value = value[:-2].rstrip() + " " + lines[i].strip()
            i += 1
        if name.startswith("!") or name.endswith("!"):
            key = name.strip("!").lower()
            self.attrs.pop(key, None)
            self.attrs[f"{key}!"] = ""  # remembered as unset (sectids!)
            if header:
                self.header.pop(key, None)
            return i
        key = name.lower()
        value = self.substitute(value.strip())
        self.attrs[key] = value
        self.attrs.pop(f"{key}!", None)
        if header:
            self.header[key] = value
        return i

    def header_fields(self) -> dict[str, Any]:
        """Header attributes as the front-matter-like mapping meta_from_front_matter reads."""
        h = dict(self.header)
        fields: dict[str, Any] = {}
        authors = h.pop("authors", None) or h.pop("author", None)
        h.pop("author", None)
        if authors is None and self.author_line:
            authors = self.author_line
        if authors:
            fields["authors"] = authors
        revdate = h.pop("revdate", None) or self.revision_date()
        if revdate:
            fields["modified"] = revdate
        for key in ("date", "created", "updated", "modified", "project", "type", "doc_type", "groups", "title"):
            if key in h:
                fields[key] = h.pop(key)
        status = h.pop("status", None)
        state = h.pop("state", None)
        if status or state:
            fields["status"] = status or state
        tags = h.pop("tags", None)
        keywords = h.pop("keywords", None)
        if tags or keywords:
            fields["tags"] = tags or keywords
        for key, value in h.items():
            if key not in _PROCESSING_ATTRS and value:
                fields.setdefault(key, value)
        return fields

    def revision_date(self) -> str | None:
        """The date of a revision line 'v1.2, 2024-03-01: remark' (or '2024-03-01')."""
        if not self.revision_line:
            return None
        line = self.revision_line.split(":", 1)[0]
        parts = [p.strip() for p in line.split(",")]
        candidates = parts[1:] if len(parts) > 1 else parts
        return next((p for p in candidates if re.match(r"\d{4}", p)), None)

    # --- body --------------------------------------------------------------------------------

    def read_blocks(self, lines: list[str], i: int) -> None:
        if self.doctitle:
            self.stack = push_heading((), 0, self.doctitle)
            self.builder.cut(path_of(self.stack), None)
        n = len(lines)
        at_block_start = True
        while i < n:
            line = lines[i]
            stripped = line.strip()
            if not stripped:
                self.end_paragraph()
                at_block_start = True
                i += 1
                continue
            if _COMMENT_BLOCK.match(line):
                self.end_paragraph()
                i = self.skip_comment_block(lines, i)
                continue
            if _LINE_COMMENT.match(line):
                i += 1
                continue
            if self._para and not at_block_start:
                if self.continues_paragraph(line):
                    self._para.append(line)
                    i += 1
                    continue
            self.end_paragraph()
            i, at_block_start = self.block(lines, i)
        self.end_paragraph()

    def continues_paragraph(self, line: str) -> bool:
        """A line right after paragraph text is more of it, unless it opens a list item or a block."""
        stripped = line.strip()
        if _LIST_ITEM.match(line) or self.is_dlist(line) or stripped == "+":
            return False
        return not (_VERBATIM.match(stripped) or _COMPOUND.match(stripped) or _TABLE.match(stripped))

    def is_dlist(self, line: str) -> bool:
        m = _DLIST.match(line)
        return bool(m) and "://" not in m[1] and not m[1].endswith(":")

    def block(self, lines: list[str], i: int) -> tuple[int, bool]:
        """Read the block that starts at line i; the next line and whether it starts a block."""
        line = lines[i]
        stripped = line.strip()
        if m := _BLOCK_ANCHOR.match(stripped):
            self._pending_id = m[1]
            return i + 1, True
        if _ATTR_ENTRY.match(line):
            return self.attribute_entry(lines, i, header=False), True
        if m := _TITLE.match(line):
            self.section(m[1], title_of(m))
            return i + 1, True
        if _BLOCK_ATTRS.match(stripped):
            self.block_attributes(stripped)
            return i + 1, True
        if m := _TABLE.match(stripped):
            return self.table(lines, i, m[1]), True
        if m := _VERBATIM.match(stripped):
            return self.verbatim(lines, i, m[1]), True
        if _COMPOUND.match(stripped):
            self.clear_pending()
            return i + 1, True  # the delimiters of blocks with ordinary content: just boundaries
        if _BLOCK_MACRO.match(stripped) or _THEMATIC.match(stripped) or stripped == "+":
            self.clear_pending()
            return i + 1, True
        if m := _BLOCK_TITLE.match(stripped):
            self.builder.add(self.inline(m[1]))
            return i + 1, True
        if line[:1] in (" ", "\t") and not _LIST_ITEM.match(line):  # a literal paragraph
            j = i
            while j < len(lines) and lines[j].strip():
                j += 1
            self.builder.add("\n".join(lines[i:j]))
            self.clear_pending()
            return j, True
        if m := _LIST_ITEM.match(line):
            self.list_item(m[1], m[2])
            return i + 1, False
        if self.is_dlist(line):
            m = _DLIST.match(line)
            assert m is not None
            self.builder.add(self.inline(m[1]))
            if m[3]:
                self._para = [m[3]]
            return i + 1, False
        if any(a.split(",")[0].strip() in ("source", "listing", "literal") for a in self._pending_attrs):
            j = i
            while j < len(lines) and lines[j].strip():
                j += 1
            self.builder.add("\n".join(lines[i:j]))  # a listing paragraph: verbatim
            self.clear_pending()
            return j, True
        self._para = [line]
        self.clear_pending()
        return i + 1, False

    def clear_pending(self) -> None:
        self._pending_id = None
        self._pending_attrs = []

    def block_attributes(self, stripped: str) -> None:
        """`[#id.role]`, `[source,python]`, `[cols="1,2"]`: the id is kept for the next section."""
        body = stripped[1:-1]
        self._pending_attrs.append(body)
        first = body.split(",", 1)[0].strip()
        if "#" in first:
            ident = re.split(r"[.%]", first.split("#", 1)[1], maxsplit=1)[0]
            if ident:
                self._pending_id = ident
        if m := re.search(r"(?:^|,)\s*id\s*=\s*\"?([\w:.-]+)", body):
            self._pending_id = m[1]

    def section(self, marks: str, raw_title: str) -> None:
        anchor = None
        tail = raw_title[-300:]  # an anchor is short: never search a whole long line
        if m := _TITLE_ANCHOR.search(tail):
            anchor = m[1]
            raw_title = raw_title[: len(raw_title) - len(tail) + m.start()]
        title = self.inline(raw_title)
        level = len(marks) - 1
        anchor = anchor or self._pending_id
        if anchor is None and "sectids!" not in self.attrs and title:
            anchor = generate_id(title, self.attrs, self.taken)
        self.clear_pending()
        if anchor:
            self.taken.add(anchor)
        if not title:
            return
        if self.first_title is None:
            self.first_title = title
        self._list_counts.clear()
        self.stack = push_heading(self.stack, level, title)
        self.builder.cut(path_of(self.stack), anchor)

    def list_item(self, marker: str, text: str) -> None:
        text = _CHECKBOX.sub("", text)
        if marker[0] == "." or marker[0].isdigit() or marker[-1] == ")" or marker[-1] == "." and len(marker) == 2:
            n = self._list_counts.get(marker, 0) + 1 if not marker[0].isdigit() else int(marker[:-1])
            self._list_counts[marker] = n
            self._para = [f"{n}. {text}"]
        else:
            self._para = [f"- {text}"]
        self.clear_pending()

    def end_paragraph(self) -> None:
        if not self._para:
            return
        lines: list[str] = []
        current: list[str] = []
        for line in self._para:  # ' +' at a line's end is a hard line break
            if line.rstrip().endswith(" +"):
                current.append(line.rstrip()[:-2])
                lines.append(" ".join(current))
                current = []
            else:
                current.append(line)
        if current:
            lines.append(" ".join(current))
        self.builder.add("\n".join(self.inline(line) for line in lines))
        self._para = []

    def skip_comment_block(self, lines: list[str], i: int) -> int:
        delimiter = lines[i].strip()
        j = i + 1
        while j < len(lines) and lines[j].strip() != delimiter:
            j += 1
        return j + 1

    def verbatim(self, lines: list[str], i: int, delimiter: str) -> int:
        """A listing, literal or passthrough block: its lines as they are (tags of a passthrough dropped)."""
        fence = delimiter.startswith("```")
        j = i + 1
        while j < len(lines) and not (lines[j].startswith("```") if fence else lines[j].strip() == delimiter):
            j += 1
        text = "\n".join(lines[i + 1 : j])
        if delimiter.startswith("+"):
            text = _TAG.sub(" ", text)
        self.builder.add(text)
        self.clear_pending()
        return j + 1

    def table(self, lines: list[str], i: int, kind: str) -> int:
        delimiter = lines[i].strip()
        j = i + 1
        while j < len(lines) and lines[j].strip() != delimiter:
            j += 1
        body = [line for line in lines[i + 1 : j]]
        cols = self.table_columns()
        if kind in ",:":
            rows = csv.reader((line for line in body if line.strip()), delimiter=kind, skipinitialspace=True)
            for row in rows:
                self.add_row(row)
        else:
            self.psv_rows(body, kind, cols)
        self.clear_pending()
        return j + 1

    def table_columns(self) -> int | None:
        for attrs in self._pending_attrs:
            if m := re.search(r"cols\s*=\s*\"([^\"]*)\"|cols\s*=\s*'([^']*)'|cols\s*=\s*([^,\s]+)", attrs):
                spec = next(g for g in m.groups() if g is not None)
                if mult := re.fullmatch(r"\s*(\d+)\*.*", spec):
                    return int(mult[1])
                return len([c for c in re.split(r"[,;]", spec) if c.strip()]) or None
        return None

    def psv_rows(self, body: list[str], sep: str, cols: int | None) -> None:
        """Cells start at each unescaped separator, a cell spec ('2+', '3*', '^.^', 'a') right
        before it; a row is complete after `cols` columns (the first line's, unless [cols=...] says)."""
        cells: list[tuple[int, str]] = []  # (columns it takes, text)
        first_line_cells = None
        for line in body:
            if not line.strip():
                continue
            segments = line.replace("\\" + sep, "\x00").split(sep)
            specs = [""] * len(segments)
            for k in range(len(segments) - 1):  # a segment may end with the spec of the next cell
                tail = segments[k][-40:]  # a spec is short: never search a whole long cell
                m = _CELL_SPEC.search(tail)
                if m and m[1] and (k == 0 or re.search(r"[\d<^>]", m[1])):
                    specs[k + 1] = m[1]
                    segments[k] = segments[k][: len(segments[k]) - len(tail) + m.start()]
            segments = [s.replace("\x00", sep) for s in segments]
            if segments[0].strip() and cells:  # text before the first separator continues the last cell
                span, text = cells[-1]
                cells[-1] = (span, f"{text} {segments[0]}")
            line_cells = 0
            for spec, text in zip(specs[1:], segments[1:]):
                span = 1
                if m := _SPAN.match(spec):
                    span = int(m[1] or m[2])
                cells.append((span, text))
                line_cells += span
            if first_line_cells is None and line_cells:
                first_line_cells = line_cells
        width = cols or first_line_cells or 1
        row: list[str] = []
        used = 0
        for span, text in cells:
            row.append(text)
            used += span
            if used >= width:
                self.add_row(row)
                row, used = [], 0
        if row:
            self.add_row(row)

    def add_row(self, cells: list[str]) -> None:
        texts = (self.inline(c) for c in cells)
        line = " | ".join(t for t in texts if t)
        if line:
            self.builder.add(line)

    # --- inline ------------------------------------------------------------------------------

    def substitute(self, text: str) -> str:
        def ref(m: re.Match[str]) -> str:
            name = m[1].lower()
            if name in self.attrs:
                return self.attrs[name]
            return _BUILTIN_ATTRS.get(name, m[0])

        return _ATTR_REF.sub(ref, text) if "{" in text else text

    def inline(self, text: str) -> str:
        """The text a reader sees of a line of AsciiDoc: attributes substituted, markup dropped."""
        text = self.substitute(text)
        for pattern, repl in _INLINE:
            if repl == "XREF":
                text = pattern.sub(xref_text, text)
            elif repl == "LINK":
                text = pattern.sub(lambda m: m[2].split(",")[0].strip() or m[1], text)
            else:
                text = pattern.sub(repl, text)
        return collapse(text)


def xref_text(m: re.Match[str]) -> str:
    """`<<install,Installing>>` reads 'Installing'; `<<_install_steps>>` 'install steps'."""
    if m[2]:
        return m[2].strip()
    target = m[1].split("#")[-1].strip()
    return target.removesuffix(".adoc").lstrip("_").replace("_", " ").replace("-", " ")
