"""Check that the labelled evaluation set agrees with the example corpus.

    .venv/bin/python examples/eval/check_gold.py

For every line of gold.jsonl it verifies that the file exists, that the answer (20-120 words)
occurs verbatim, modulo whitespace, in the text a reader would extract from the file, and that the
location is right:

- Markdown: front matter dropped and markup stripped roughly; `anchor` must be the GitHub-style
  slug of a heading and the answer must lie in that heading's section.
- HTML: tags stripped, <script>/<style>/<nav>/<footer> dropped, entities decoded; `anchor` must be
  the id of an h1-h3 and the answer must lie in that heading's section.
- Plain text: the raw text.
- PDF: pypdf's extract_text; when `page` is set the answer must lie on that (1-based) page.
- DOCX: python-docx paragraphs and table cells.

It also checks that queries.jsonl and gold.jsonl cover the same ids, that no gold answer points at
a document restricted by `groups` (in front matter or a `_meta.yaml` sidecar), and that
unanswerable.jsonl is well formed. Exit status 0 when everything passes.
"""

from __future__ import annotations

import json
import re
import sys
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import yaml

EVAL = Path(__file__).resolve().parent
CORPUS = EVAL.parent / "corpus"


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def slug(heading: str) -> str:
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


# ---- Markdown ---------------------------------------------------------------------------------


def split_front_matter(raw: str) -> tuple[dict, str]:
    if raw.startswith("---\n"):
        end = raw.index("\n---", 4)
        return yaml.safe_load(raw[4:end]) or {}, raw[end + 4 :]
    return {}, raw


def strip_md_line(line: str) -> str:
    line = re.sub(r"^\s{0,3}#{1,6}\s+", "", line)
    line = re.sub(r"^\s*(?:[-*+]|\d+\.)\s+", "", line)
    line = re.sub(r"^\s*>\s?", "", line)
    line = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", line)
    line = line.replace("`", "")
    line = re.sub(r"\*\*(.+?)\*\*", r"\1", line)
    line = re.sub(r"(?<!\w)__(?!\s)(.+?)(?<!\s)__(?!\w)", r"\1", line)
    line = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?!\w)", r"\1", line)
    return line


def md_sections(path: Path) -> dict[str | None, str]:
    """anchor -> section text; key None holds the whole document."""
    _, body = split_front_matter(path.read_text(encoding="utf-8"))
    sections: dict[str | None, list[str]] = {None: []}
    current: str | None = None
    for line in body.splitlines():
        m = re.match(r"^\s{0,3}(#{1,6})\s+(.*)$", line)
        if m:
            current = slug(m.group(2))
            sections.setdefault(current, [])
        text = strip_md_line(line)
        sections[None].append(text)
        if current is not None:
            sections[current].append(text)
    return {k: norm("\n".join(v)) for k, v in sections.items()}


# ---- HTML -------------------------------------------------------------------------------------


class _HTMLText(HTMLParser):
    DROP = {"script", "style", "nav", "footer", "head"}
    BLOCK = {"p", "li", "div", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "td", "th", "br", "pre", "article", "section"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.skip = 0
        self.current: str | None = None
        self.sections: dict[str | None, list[str]] = {None: []}

    def handle_starttag(self, tag, attrs):
        if tag in self.DROP:
            self.skip += 1
        if tag in ("h1", "h2", "h3") and not self.skip:
            anchor = dict(attrs).get("id")
            if anchor:
                self.current = anchor
                self.sections.setdefault(anchor, [])
        if tag in self.BLOCK:
            self._add(" ")

    def handle_endtag(self, tag):
        if tag in self.DROP and self.skip:
            self.skip -= 1
        if tag in self.BLOCK:
            self._add(" ")

    def handle_data(self, data):
        if not self.skip:
            self._add(data)

    def _add(self, text: str) -> None:
        self.sections[None].append(text)
        if self.current is not None:
            self.sections[self.current].append(text)


def html_sections(path: Path) -> dict[str | None, str]:
    p = _HTMLText()
    p.feed(path.read_text(encoding="utf-8"))
    p.close()
    return {k: norm(unescape("".join(v))) for k, v in p.sections.items()}


# ---- PDF / DOCX / TXT -------------------------------------------------------------------------


def pdf_pages(path: Path) -> list[str]:
    from pypdf import PdfReader

    return [norm(page.extract_text() or "") for page in PdfReader(str(path)).pages]


def docx_text(path: Path) -> str:
    import docx

    d = docx.Document(str(path))
    parts = [p.text for p in d.paragraphs]
    for table in d.tables:
        for row in table.rows:
            parts.extend(cell.text for cell in row.cells)
    return norm("\n".join(parts))


# ---- Restrictions -----------------------------------------------------------------------------


def groups_of(path: Path) -> list[str]:
    groups: list[str] = []
    for folder in [path.parent, *path.parent.parents]:
        meta = folder / "_meta.yaml"
        if meta.exists():
            groups += (yaml.safe_load(meta.read_text(encoding="utf-8")) or {}).get("groups", []) or []
        if folder == CORPUS:
            break
    if path.suffix == ".md":
        fm, _ = split_front_matter(path.read_text(encoding="utf-8"))
        groups += fm.get("groups", []) or []
    return groups


# ---- Main -------------------------------------------------------------------------------------


def load_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def check_one(g: dict) -> str | None:
    path = CORPUS / g["source"]
    if not path.exists():
        return f"file not found: {g['file']}"
    answer = norm(g["answer"])
    words = len(answer.split())
    if not 20 <= words <= 120:
        return f"answer has {words} words (want 20-120)"
    if groups_of(path):
        return f"points at a restricted document (groups {groups_of(path)})"
    anchor, page = g.get("anchor"), g.get("page")
    ext = path.suffix.lower()
    if ext in (".md", ".html", ".htm"):
        sections = md_sections(path) if ext == ".md" else html_sections(path)
        if answer not in sections[None]:
            return "answer not found in document text"
        if anchor is not None:
            if anchor not in sections:
                return f"anchor {anchor!r} is not a heading of the document"
            if answer not in sections[anchor]:
                return f"answer not found in section #{anchor}"
    elif ext == ".pdf":
        pages = pdf_pages(path)
        if page is not None:
            if not 1 <= page <= len(pages):
                return f"page {page} out of range (1-{len(pages)})"
            if answer not in pages[page - 1]:
                found = [i + 1 for i, t in enumerate(pages) if answer in t]
                return f"answer not on page {page} (found on pages {found or 'none'})"
        elif answer not in " ".join(pages):
            return "answer not found in PDF text"
    elif ext == ".docx":
        if answer not in docx_text(path):
            return "answer not found in DOCX text"
    elif ext == ".txt":
        if answer not in norm(path.read_text(encoding="utf-8")):
            return "answer not found in text file"
    else:
        return f"unsupported file type {ext}"
    return None


def main() -> int:
    queries = load_jsonl(EVAL / "queries.jsonl")
    gold = load_jsonl(EVAL / "gold.jsonl")
    unanswerable = load_jsonl(EVAL / "unanswerable.jsonl")
    errors: list[str] = []

    qids = [q["_id"] for q in queries]
    if len(set(qids)) != len(qids):
        errors.append("queries.jsonl: duplicate _id")
    gids = {g["query_id"] for g in gold}
    for missing in sorted(set(qids) - gids):
        errors.append(f"{missing}: query has no gold answer")
    for extra in sorted(gids - set(qids)):
        errors.append(f"{extra}: gold answer for an unknown query")
    uids = [u["_id"] for u in unanswerable]
    if len(set(uids)) != len(uids) or set(uids) & set(qids):
        errors.append("unanswerable.jsonl: duplicate or clashing _id")
    if any(not u.get("text") for u in unanswerable):
        errors.append("unanswerable.jsonl: empty text")

    for g in gold:
        problem = check_one(g)
        if problem:
            errors.append(f"{g['query_id']} ({g['file']}): {problem}")

    for e in errors:
        print("FAIL", e)
    print(f"{len(gold) - sum(1 for e in errors if e.split(' ')[0] in gids)} / {len(gold)} gold answers OK; "
          f"{len(queries)} queries, {len(unanswerable)} unanswerable; {len(errors)} problem(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
