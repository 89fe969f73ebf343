"""Markdown ERB templates (Middleman's `.html.md.erb`, Rails' `.md.erb`): the template tags are removed
and what is left is read as Markdown, front matter included.

`<% code %>` and `<%# comments %>` produce no text; a line that holds only such tags goes away whole,
as ERB's trim mode drops it. What `<%= output %>` would print is unknown here, so it is dropped too
(a line holding only an output tag becomes a blank line). `<%%` is ERB's escape for a literal `<%`.
"""

from __future__ import annotations

import re
from pathlib import Path

from km_search.types import Document

from ._common import decode_text, read_bytes
from .markdown import parse_source


_TAG = re.compile(r"<%(?!%)(=|-|#)?.*?-?%>", re.DOTALL)
_CODE_ONLY_LINE = re.compile(r"^[ \t]*(?:<%(?![%=])(?:(?!%>)[^\n])*%>[ \t]*)+\n", re.MULTILINE)


def parse(path: Path, rel_path: str) -> Document:
    return parse_source(strip_erb(decode_text(read_bytes(path))), path, rel_path)


def strip_erb(source: str) -> str:
    """The Markdown a template holds, without its template tags."""
    source = source.replace("\r\n", "\n").replace("\r", "\n")
    source = _CODE_ONLY_LINE.sub("", source)
    source = _TAG.sub("", source)
    return source.replace("<%%", "<%")
