"""Markdown: YAML front matter for metadata, headings for sections, GitHub slugs for anchors.

Handbooks and runbooks are often the sources of a static site, whose template tags a reader never
sees: Liquid / Jekyll / Eleventy / Nunjucks (`{% page "/leave/" %}`, `{% alert %}…{% endalert %}`)
and Hugo shortcodes (`{{< ref "x.md" >}}`, `{{% notice %}}`). Outside code, a tag that is a link's
target becomes the path it names (so the link reads as its text), a comment block goes with its text,
and every other tag goes, the text between paired tags kept. `{{ expression }}` stays: pages about
templates write it in prose.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any, Callable

import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token

from km_search.types import Document, DocumentMeta

from ._common import (
    SectionBuilder,
    SlugDeduper,
    collapse,
    decode_text,
    iso_date,
    path_of,
    push_heading,
    read_bytes,
    scalar_str,
    split_names,
    split_tags,
)


_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)?(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_TAG = re.compile(r"<!--.*?-->|<(script|style)\b.*?</\1\s*>|<[^>]*>", re.DOTALL | re.IGNORECASE)
_KNOWN_KEYS = frozenset(
    "title author authors date created modified updated project type doc_type tags status groups".split()
)
_TEXT_CHILDREN = {"text", "text_special", "code_inline"}
_FENCE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(``[^\n]*?``|`[^`\n]*`)")
_TEMPLATE = r"\{%-?.*?-?%\}|\{\{<.*?>\}\}|\{\{%.*?%\}\}"
_TEMPLATE_TAG = re.compile(_TEMPLATE, re.DOTALL)
_TEMPLATE_LINK = re.compile(rf"\]\(\s*({_TEMPLATE})\s*\)", re.DOTALL)
_TEMPLATE_COMMENT = re.compile(r"\{%-?\s*comment\s*-?%\}.*?\{%-?\s*endcomment\s*-?%\}", re.DOTALL)
_QUOTED = re.compile(r"\"([^\"]*)\"|'([^']*)'")
_GONE = "\x00"  # where a tag was


def parse(path: Path, rel_path: str) -> Document:
    return parse_source(map_prose(decode_text(read_bytes(path)), without_template_tags), path, rel_path)


def map_prose(source: str, clean: Callable[[list[str]], list[str]]) -> str:
    """`source` with `clean` applied to each run of lines outside its front matter and code fences."""
    source = source.replace("\r\n", "\n").replace("\r", "\n")
    m = _FRONT_MATTER.match(source)
    head, rest = (source[: m.end()], source[m.end():]) if m else ("", source)
    out: list[str] = []
    prose: list[str] = []
    fence: str | None = None
    for line in rest.split("\n"):
        if fence is not None:
            out.append(line)
            if line.strip().startswith(fence) and not line.strip().strip(fence[0]):
                fence = None
            continue
        if m := _FENCE.match(line):
            out.extend(clean(prose))
            prose = []
            fence = m[1]
            out.append(line)
            continue
        prose.append(line)
    out.extend(clean(prose))
    return head + "\n".join(out)


def outside_code_spans(lines: list[str], clean: Callable[[str], str]) -> list[str]:
    """The lines with `clean` applied to their text outside inline code spans."""
    pieces = _CODE_SPAN.split("\n".join(lines))
    for i in range(0, len(pieces), 2):  # even pieces are outside code spans
        pieces[i] = clean(pieces[i])
    return "".join(pieces).split("\n") if lines else []


def without_template_tags(lines: list[str]) -> list[str]:
    """Prose lines without static-site template tags (module docstring); a link to a tag links to
    the path it names, or to nothing. A line that held only tags goes away whole: left blank, it
    would end the HTML block or list it sits in, which the rendered tag does not."""
    def mark(text: str) -> str:
        text = _TEMPLATE_COMMENT.sub(_GONE, text)
        text = _TEMPLATE_LINK.sub(lambda m: f"]({link_target(m[1])})", text)
        return _TEMPLATE_TAG.sub(_GONE, text)
    return [line.replace(_GONE, "") for line in outside_code_spans(lines, mark)
            if _GONE not in line or line.replace(_GONE, "").strip()]


def link_target(tag: str) -> str:
    """The first quoted argument of a template tag, as a link destination ('#' without one)."""
    m = _QUOTED.search(tag)
    target = (m[1] if m[1] is not None else m[2]) if m else ""
    return target.strip().replace(" ", "%20") or "#"


def parse_source(source: str, path: Path, rel_path: str) -> Document:
    """The Document of Markdown text; the variants (MDX, ERB templates) call it on their cleaned text."""
    source = source.replace("\r\n", "\n").replace("\r", "\n")
    front, body = split_front_matter(source)
    tokens = MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(body)
    sections = build_sections(tokens)
    first_h1 = first_heading(tokens)
    meta = meta_from_front_matter(front, fallback_title=first_h1 or path.stem)
    return Document(path=rel_path, format="markdown", sections=sections, meta=meta)


def split_front_matter(source: str) -> tuple[dict[str, Any], str]:
    """A leading '---' YAML block as a dict and the rest; a block that is not a YAML mapping is
    dropped without a word (bad metadata must not end up as searchable text, nor stop the file)."""
    m = _FRONT_MATTER.match(source)
    if not m:
        return {}, source
    try:
        data = yaml.safe_load(m[1] or "")
    except (yaml.YAMLError, ValueError, RecursionError):  # ValueError: 'date: 2024-13-45'
        data = None
    return (data if isinstance(data, dict) else {}), source[m.end():]


def meta_from_front_matter(front: dict[str, Any], fallback_title: str) -> DocumentMeta:
    """Known keys map to DocumentMeta fields; other scalar keys go to `extra` as strings."""
    fm = {str(k).strip().lower(): v for k, v in front.items()}
    extra = {k: s for k, v in fm.items() if k not in _KNOWN_KEYS and (s := scalar_str(v)) is not None}
    return DocumentMeta(
        title=scalar_str(fm.get("title")) or fallback_title,
        authors=as_list(first_of(fm, "authors", "author"), split_names),
        created=iso_date(first_of(fm, "created", "date")),
        modified=iso_date(first_of(fm, "modified", "updated")),
        project=scalar_str(fm.get("project")),
        doc_type=scalar_str(first_of(fm, "doc_type", "type")),
        tags=as_list(fm.get("tags"), split_tags),
        status=scalar_str(fm.get("status")),
        extra=extra,
        groups=declared_groups(as_list(fm.get("groups"), split_tags)),
    )


def declared_groups(names: tuple[str, ...]) -> tuple[str, ...]:
    """Groups a file declares (`groups: [hr, leads]`), lower-cased; the default ('public',) when it
    declares none, which lets its folders' `_meta.yaml` decide (ingest/metadata.py)."""
    groups = tuple(dict.fromkeys(n.strip().lower() for n in names if n.strip()))
    return groups or ("public",)


def first_of(fm: dict[str, Any], *keys: str) -> Any:
    return next((fm[k] for k in keys if fm.get(k) is not None), None)


def as_list(value: Any, split) -> tuple[str, ...]:  # noqa: ANN001 - a str -> tuple splitter
    """A YAML list, or a string split the way the field is usually written."""
    if isinstance(value, list | tuple):
        items = (scalar_str(v) for v in value)
        return tuple(dict.fromkeys(i for i in items if i))
    text = scalar_str(value)
    return split(text) if text else ()


def inline_text(token: Token) -> str:
    """What a reader sees of an inline run: link text without URL, no emphasis marks, no images."""
    parts: list[str] = []
    for child in token.children or ():
        if child.type in _TEXT_CHILDREN:
            parts.append(child.content)
        elif child.type == "softbreak":
            parts.append(" ")
        elif child.type == "hardbreak":
            parts.append("\n")
    return "".join(parts)


def first_heading(tokens: list[Token]) -> str | None:
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.tag == "h1":
            return collapse(inline_text(tokens[i + 1])) or None
    return None


def build_sections(tokens: list[Token]) -> tuple:
    """Walk the block tokens: headings cut sections, every other block adds lines to the current one."""
    builder, stack, slugs = SectionBuilder(), (), SlugDeduper()
    lists: list[str] = []  # open list kinds, for the bullet of the next item
    bullet = ""
    row: list[str] | None = None
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        kind = tok.type
        if kind == "heading_open":
            title = collapse(inline_text(tokens[i + 1]))
            i += 3
            if title:
                stack = push_heading(stack, int(tok.tag[1]), title)
                builder.cut(path_of(stack), slugs(title))
            continue
        if kind in ("bullet_list_open", "ordered_list_open"):
            lists.append(kind)
        elif kind in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
        elif kind == "list_item_open":
            bullet = "- " if lists and lists[-1] == "bullet_list_open" else f"{tok.info or 1}. "
        elif kind == "tr_open":
            row = []
        elif kind == "tr_close" and row is not None:
            builder.add(" | ".join(row))
            row = None
        elif kind == "inline" and row is not None:
            row.append(collapse(inline_text(tok)))
        elif kind == "inline":
            builder.add(bullet + collapse_lines(inline_text(tok)))
            bullet = ""
        elif kind in ("fence", "code_block"):
            builder.add(tok.content)
        elif kind == "html_block":
            builder.add(html.unescape(_TAG.sub(" ", tok.content)))
        i += 1
    return builder.finish()


def collapse_lines(text: str) -> str:
    """Collapse spaces but keep the hard line breaks a paragraph asked for."""
    return "\n".join(collapse(line) for line in text.split("\n"))
