"""Files that hold nothing to index although they are not broken: a Markdown page that is front matter
only (often a redirect stub, `redirect_to: /x/`), an HTML page that only redirects (meta refresh).
The ingest report lists them as skipped with the reason (km_search.errors.NothingToIndex), not as
failures: there is nothing to fix in them."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from .parsers.markdown import split_front_matter

_REDIRECT_KEYS = ("redirect_to", "redirect", "redirect_url", "redirectto")
_REFRESH = re.compile(
    r"<meta\b[^>]*http-equiv\s*=\s*[\"']?refresh[\"']?[^>]*content\s*=\s*[\"']?\s*\d*\s*;?\s*(?:url\s*=\s*)?([^\"'>\s]*)"
    r"|<meta\b[^>]*content\s*=\s*[\"']?\s*\d*\s*;?\s*url\s*=\s*([^\"'>\s]*)[^>]*http-equiv\s*=\s*[\"']?refresh",
    re.IGNORECASE)
_MARKDOWN = (".md", ".markdown", ".mdx")
_HTML = (".html", ".htm", ".xhtml")
MAX_REDIRECT_WORDS = 40  # a redirect page's own text ('Redirecting to …', a link): more is a real page
_HEAD = 65536  # bytes read to recognize one


def front_matter_only(text: str) -> str | None:
    """Why Markdown text with front matter but no body has nothing to index, or None when it has a
    body or no front matter."""
    front, body = split_front_matter(text.replace("\r\n", "\n"))
    if body.strip() or not text.lstrip("\ufeff").startswith("---"):
        return None
    for key in _REDIRECT_KEYS:
        target = front.get(key)
        if isinstance(target, list) and target:
            target = target[0]
        if isinstance(target, str) and target.strip():
            return f"redirect stub to {target.strip()}: front matter only, nothing to index"
    return "front matter only: no text to index"


def html_redirect(text: str, words: int) -> str | None:
    """Why an HTML page that only redirects (meta refresh, with at most MAX_REDIRECT_WORDS words of
    its own) has nothing to index, or None."""
    m = _REFRESH.search(text)
    if not m or words > MAX_REDIRECT_WORDS:
        return None
    target = m[1] or m[2]
    return f"redirect page (meta refresh) to {target}: nothing to index" if target else "redirect page (meta refresh): nothing to index"


def stub_reason(path: Path, words: int = 0) -> str | None:
    """Why this file has nothing to index, when it is a front-matter-only or redirect page; `words`:
    how many words its parsed text has (0 when it parsed to none)."""
    suffix = path.suffix.lower()
    if suffix not in _MARKDOWN + _HTML:
        return None
    try:
        with open(path, "rb") as f:
            text = f.read(_HEAD).decode("utf-8", errors="replace")
    except OSError:
        return None
    if suffix in _MARKDOWN:
        try:
            return front_matter_only(text) if not words else None
        except yaml.YAMLError:
            return None
    return html_redirect(text, words)
