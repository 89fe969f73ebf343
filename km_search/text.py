"""Text helpers every part shares, so matching agrees everywhere: one word pattern, one fold."""

from __future__ import annotations

import re
import unicodedata

WORD = re.compile(r"\w+", re.UNICODE)  # a word for answers, snippets and evaluation overlap
_SPACES = re.compile(r"\s+")


def fold(text: str) -> str:
    """Case- and accent-insensitive form for matching: 'Tomás  HERRERA' -> 'tomas herrera'."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _SPACES.sub(" ", plain.casefold()).strip()
