"""MDX: Markdown with JSX. Import/export statements, JSX comments, `{expressions}` and component tags
(`<Tabs>`, `<Callout type="warning" />`, fragments) are dropped and the text between tags is kept; the
rest is read by the Markdown parser (front matter, headings, GitHub slugs). Code blocks and inline
code are left as written.
"""

from __future__ import annotations

import re
from pathlib import Path

from km_search.types import Document

from ._common import decode_text, read_bytes
from .markdown import map_prose, outside_code_spans, parse_source


_ESM = re.compile(r"^(?:import|export)\b")
_JSX_COMMENT = re.compile(r"\{/\*.*?\*/\}", re.DOTALL)
# A component starts with a capital (lower-case tags are HTML, which the Markdown parser handles);
# attribute values may hold '>' inside quotes or braces.
_ATTRS = r"""(?:[^<>{}"']|"[^"]*"|'[^']*'|\{(?:[^{}]|\{[^{}]*\})*\})*"""
_JSX_TAG = re.compile(rf"</?[A-Z][\w.:-]*(?:\s{_ATTRS})?/?>|<>|</>")
_EXPRESSION = re.compile(r"\{(?:[^{}\n]|\{[^{}\n]*\})*\}")


def parse(path: Path, rel_path: str) -> Document:
    return parse_source(strip_mdx(decode_text(read_bytes(path))), path, rel_path)


def strip_mdx(source: str) -> str:
    """The Markdown of an MDX file: front matter and code blocks as they are, JSX and ESM removed."""
    return map_prose(source, clean_prose)


def clean_prose(lines: list[str]) -> list[str]:
    """Lines outside code fences: ESM blocks (up to the next blank line, as MDX reads them) dropped,
    then JSX removed outside inline code. A line that held only a tag becomes a blank line."""
    kept: list[str] = []
    in_esm = False
    for line in lines:
        if in_esm and line.strip():
            continue
        in_esm = bool(_ESM.match(line))
        kept.append("" if in_esm else line)
    return outside_code_spans(kept, lambda text: _EXPRESSION.sub("", _JSX_TAG.sub("", _JSX_COMMENT.sub("", text))))
