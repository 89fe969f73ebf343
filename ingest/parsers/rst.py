"""reStructuredText: docutils' document tree, its sections' own ids as anchors (what Sphinx and
GitHub link to), the bibliographic field list (and YAML front matter) as metadata.

Docutils is told to be quiet and to never stop (report and halt level 5), never to read other files
(`include`, `raw`, `csv-table :file:` are disabled) nor docutils.conf. Sphinx markup that plain
docutils does not know must not lose the file: unknown directives are read as their argument plus
their content parsed as reStructuredText (or kept verbatim for code-like ones, dropped for
navigation like `toctree`), unknown roles (`:ref:`, `:doc:`, `:class:`) as the text a reader sees.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.core import publish_doctree
from docutils.parsers.rst import Directive, directives, roles
from docutils.parsers.rst.languages import en as _rst_en

from km_search.errors import ParseError
from km_search.types import Document

from ._common import (
    SectionBuilder,
    collapse,
    decode_text,
    path_of,
    push_heading,
    read_bytes,
    slugify,
)
from .markdown import meta_from_front_matter, split_front_matter


_SETTINGS = {
    "report_level": 5,  # no warnings on stderr
    "halt_level": 5,  # never stop on a markup error
    "exit_status_level": 5,
    "warning_stream": False,
    "traceback": True,  # raise, never sys.exit(), on an internal error
    "_disable_config": True,  # no docutils.conf from the working directory or $HOME
    "file_insertion_enabled": False,  # `.. include:: /etc/passwd` must not index that file
    "raw_enabled": False,
    "syntax_highlight": "none",
    "smart_quotes": False,
    "language_code": "en",
}
_DIRECTIVE = re.compile(r"^[ \t]*\.\.[ \t]+([A-Za-z0-9][\w:+.-]*)[ \t]*::", re.MULTILINE)
_ROLE = re.compile(r"(?<![\w`]):([A-Za-z0-9][\w:+.-]*):`")
_EXPLICIT_TITLE = re.compile(r"^(.+?)\s*<[^<>]*>$", re.DOTALL)
_LONG_LINE = 5000
_MAX_REGISTERED = 200  # new directive and role names registered per file (they stay registered) ...
_MAX_REGISTERED_TOTAL = 5000  # ... and per process: hostile files must not grow the registry forever
_registered = 0

# Sphinx directives whose content is a list of names or a file, not prose: left out.
_DROPPED_DIRECTIVES = frozenset(
    "toctree highlight literalinclude index sectionauthor moduleauthor codeauthor currentmodule "
    "automodule autoclass autofunction automethod autoattribute autodata autoexception autosummary "
    "tabularcolumns graphviz digraph graph inheritance-diagram uml plantuml mermaid bibliography "
    "default-role default-domain".split()
)
# ... and those whose content is code or program output: kept verbatim.
_LITERAL_DIRECTIVES = frozenset(
    "code-block sourcecode testcode testoutput doctest testsetup testcleanup code-cell ipython jupyter-execute "
    "prompt".split()
)
# Sphinx's code-block takes options docutils' does not (:caption:, :emphasize-lines:): always ours.
_OVERRIDDEN = frozenset({"code-block", "sourcecode"})
# ... and those whose argument is a condition or a class, not text.
_NO_ARGUMENT = frozenset("only ifconfig rst-class cssclass tab-set".split())
_SKIPPED_NODES = (
    nodes.system_message, nodes.comment, nodes.substitution_definition, nodes.target, nodes.raw,
    nodes.pending, nodes.docinfo, nodes.decoration, nodes.image, nodes.label, nodes.Invisible,
)  # fmt: skip
_LITERALS = (nodes.literal_block, nodes.doctest_block, nodes.math_block, nodes.line_block)
_DOCINFO_NAMES = {"authors": "authors", "author": "author", "date": "date", "status": "status"}


def parse(path: Path, rel_path: str) -> Document:
    source = decode_text(read_bytes(path)).replace("\r\n", "\n").replace("\r", "\n")
    front, body = split_front_matter(source)
    if not front:  # a '---' overline of a short title is not front matter
        body = source
    body = wrap_long_lines(body)
    register_unknown_markup(body)
    try:
        tree = publish_doctree(body, settings_overrides=dict(_SETTINGS, warning_stream=io.StringIO()))
    except Exception as exc:  # noqa: BLE001 - docutils may still fail on pathological input
        raise ParseError(f"not valid reStructuredText: {type(exc).__name__}: {exc}") from exc
    walker = Walker()
    walker.document(tree)
    fields = {**front, **docinfo_fields(tree)}
    if "keywords" in fields:
        keywords = fields.pop("keywords")
        fields.setdefault("tags", keywords)
    title = collapse(tree.get("title", "")) or walker.first_title or path.stem
    fields.setdefault("title", title)
    meta = meta_from_front_matter(fields, fallback_title=title)
    return Document(path=rel_path, format="rst", sections=walker.builder.finish(), meta=meta)


def wrap_long_lines(source: str) -> str:
    """Lines over docutils' line_length_limit (10 000) make it drop the whole document: cut them at
    spaces into lines of at most _LONG_LINE characters, indented alike (the same paragraph)."""
    if not any(len(line) > _LONG_LINE for line in source.split("\n")):
        return source
    out: list[str] = []
    for line in source.split("\n"):
        if len(line) <= _LONG_LINE:
            out.append(line)
            continue
        indent = line[: len(line) - len(line.lstrip())]
        rest = line[len(indent) :]
        while len(rest) > _LONG_LINE:
            cut = rest.rfind(" ", 0, _LONG_LINE)
            cut = cut if cut > 0 else _LONG_LINE
            out.append(indent + rest[:cut])
            rest = rest[cut:].lstrip(" ")
        out.append(indent + rest)
    return "\n".join(out)


# --- Sphinx markup that docutils does not know ------------------------------------------------


class _AnyOption(dict):
    """An option_spec that accepts every option (a directive with unknown options would fail)."""

    def __missing__(self, key: str) -> Any:
        return directives.unchanged


class UnknownDirective(Directive):
    """A directive docutils does not know: its argument as a paragraph, its content as rST."""

    has_content = True
    optional_arguments = 1
    final_argument_whitespace = True
    option_spec = _AnyOption({"class": directives.class_option})

    def run(self) -> list[nodes.Node]:
        name = self.name.lower()
        if name in _DROPPED_DIRECTIVES:
            return []
        if name in _LITERAL_DIRECTIVES:
            text = "\n".join(self.content)
            return [nodes.literal_block(text, text)] if text.strip() else []
        out: list[nodes.Node] = []
        if self.arguments and self.arguments[0].strip() and name not in _NO_ARGUMENT:
            inline, _ = self.state.inline_text(self.arguments[0], self.lineno)
            out.append(nodes.paragraph(self.arguments[0], "", *inline))
        if self.content:
            box = nodes.container()
            self.state.nested_parse(self.content, self.content_offset, box)
            out.append(box)
        return out


def unknown_role(name, rawtext, text, lineno, inliner, options=None, content=None):  # noqa: ANN001, ARG001
    """`:ref:\\`Title <label>\\`` reads 'Title', `:class:\\`~a.b.C\\`` reads 'C', others their text."""
    text = text.strip()
    m = _EXPLICIT_TITLE.match(text)
    if m:
        text = m[1]
    elif text.startswith("~"):
        text = text[1:].rsplit(".", 1)[-1]
    text = text.lstrip("!")
    return [nodes.inline(rawtext, text)], []


def register_unknown_markup(source: str) -> None:
    """Teach docutils every directive and role name the source uses that it does not know.

    Registration is global to this process and permanent, which is harmless: only names docutils
    has no meaning for are registered, and always to the same lenient handlers."""
    global _registered
    budget = min(_MAX_REGISTERED, _MAX_REGISTERED_TOTAL - _registered)
    for name in dict.fromkeys(m.lower() for m in _DIRECTIVE.findall(source)):
        if name in _OVERRIDDEN and directives._directives.get(name) is not UnknownDirective:  # noqa: SLF001
            directives.register_directive(name, UnknownDirective)
        elif budget > 0 and not known_directive(name):
            directives.register_directive(name, UnknownDirective)
            budget, _registered = budget - 1, _registered + 1
    for name in dict.fromkeys(m.lower() for m in _ROLE.findall(source)):
        if budget > 0 and not known_role(name):
            roles.register_local_role(name, unknown_role)
            budget, _registered = budget - 1, _registered + 1


def known_directive(name: str) -> bool:
    if directives._directives.get(name) is UnknownDirective:  # noqa: SLF001 - registered by us before
        return True
    canonical = _rst_en.directives.get(name, name)
    return name in directives._directives or canonical in directives._directive_registry  # noqa: SLF001


def known_role(name: str) -> bool:
    canonical = _rst_en.roles.get(name, name)
    return name in roles._roles or canonical in roles._role_registry  # noqa: SLF001


# --- the tree -----------------------------------------------------------------------------------


def docinfo_fields(tree: nodes.document) -> dict[str, Any]:
    """The bibliographic fields (`:Author:`, `:Date:`, `:Status:`, `:Tags:`, any other) by lower-cased name."""
    out: dict[str, Any] = {}
    for info in tree.findall(nodes.docinfo):
        for child in info.children:
            if isinstance(child, nodes.authors):
                out["authors"] = [collapse(a.astext()) for a in child.children if collapse(a.astext())]
            elif isinstance(child, nodes.field):
                name = collapse(child[0].astext()).lower() if len(child) else ""
                value = collapse(child[1].astext()) if len(child) > 1 else ""
                if name and value:
                    out[name] = value
            elif isinstance(child, nodes.Element):
                value = collapse(child.astext())
                if value:
                    out[_DOCINFO_NAMES.get(child.tagname, child.tagname)] = value
        break
    return out


class Walker:
    """Walks the doctree in document order: sections cut, every other block adds lines."""

    def __init__(self) -> None:
        self.builder = SectionBuilder()
        self.stack: tuple[tuple[int, str], ...] = ()
        self.first_title: str | None = None

    def document(self, tree: nodes.document) -> None:
        title = collapse(tree.get("title", ""))
        if title and any(isinstance(c, nodes.title) for c in tree.children):
            self.stack = push_heading((), 0, title)
            self.builder.cut(path_of(self.stack), anchor_of(tree, title))
        self.children(tree, level=1)

    def children(self, node: nodes.Element, level: int) -> None:
        for child in node.children:
            self.block(child, level)

    def block(self, node: nodes.Node, level: int) -> None:
        if isinstance(node, nodes.Text):
            self.builder.add(collapse(node.astext()))
        elif isinstance(node, _SKIPPED_NODES) or not isinstance(node, nodes.Element):
            return
        elif isinstance(node, nodes.section):
            self.section(node, level)
        elif isinstance(node, nodes.title) and isinstance(node.parent, nodes.document):
            return  # the document title: already the heading of the text before the first section
        elif isinstance(node, nodes.topic) and "contents" in node.get("classes", ()):
            return  # `.. contents::`: a table of contents repeats the headings
        elif isinstance(node, _LITERALS):
            self.builder.add(node.astext())
        elif isinstance(node, (nodes.bullet_list, nodes.enumerated_list)):
            self.list_items(node, level)
        elif isinstance(node, nodes.table):
            for row in node.findall(nodes.row):
                cells = (collapse(entry.astext()) for entry in row.children)
                self.builder.add(" | ".join(c for c in cells if c))
        elif isinstance(node, nodes.field):
            name, body = (collapse(c.astext()) for c in node.children[:2]) if len(node) >= 2 else ("", node.astext())
            self.builder.add(f"{name}: {body}" if name and body else name or body)
        elif isinstance(node, nodes.option_list_item):
            self.builder.add(collapse(" ".join(c.astext() for c in node.children)))
        elif isinstance(node, nodes.TextElement):
            self.builder.add(collapse(node.astext()))
        else:
            self.children(node, level)

    def list_items(self, node: nodes.Element, level: int) -> None:
        start = int(node.get("start", 1) or 1)
        numbered = isinstance(node, nodes.enumerated_list)
        for n, item in enumerate(c for c in node.children if isinstance(c, nodes.list_item)):
            bullet = f"{start + n}. " if numbered else "- "
            first, *rest = item.children or [nodes.paragraph()]
            if isinstance(first, nodes.paragraph):
                self.builder.add(bullet + collapse(first.astext()))
            else:
                self.builder.add(bullet.strip())
                rest = [first, *rest]
            for child in rest:
                self.block(child, level)

    def section(self, node: nodes.section, level: int) -> None:
        title_node = next((c for c in node.children if isinstance(c, nodes.title)), None)
        title = collapse(title_node.astext()) if title_node is not None else ""
        if title:
            if self.first_title is None:
                self.first_title = title
            saved = self.stack
            self.stack = push_heading(self.stack, level, title)
            self.builder.cut(path_of(self.stack), anchor_of(node, title))
        for child in node.children:
            if child is not title_node:
                self.block(child, level + 1)
        if title:  # (in rST nothing but another section follows a section: no text to give back)
            self.stack = saved


def anchor_of(node: nodes.Element, title: str) -> str | None:
    """Docutils' own first id of the section (Sphinx's and GitHub's anchor), else its slug."""
    ids = node.get("ids") or ()
    return ids[0] if ids else (slugify(title) or None)
