"""Check a hand-written end-to-end set: every gold answer is a verbatim span of its section.

    .venv/bin/python evalsets/check_gold.py evalsets/adr_govuk_aws [...]

For each line of gold.jsonl: the file exists under docs/, the product's own parser
(ingest.parsers, read only) gives it a section whose anchor is `anchor` ('' for the text before the
first heading; `page=N` for a PDF page), and the answer, whitespace
normalized, is a substring of that section's text; the answer has at least 8 words (one shingle of
the scoring rule), and its query is not a copy of any heading of the set. Exit status 1 on any
failure, with one line per problem.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ingest.parsers import format_of, parse_file


def norm(s: str) -> str:
    return " ".join(s.split())


def check(set_dir: Path) -> list[str]:
    docs = set_dir / "docs"
    with open(set_dir / "gold.jsonl", encoding="utf-8") as f:
        gold = [json.loads(line) for line in f if line.strip()]
    with open(set_dir / "queries.jsonl", encoding="utf-8") as f:
        queries = {q["_id"]: q["text"] for q in map(json.loads, f)}
    parsed, headings, problems = {}, set(), []
    for p in sorted(docs.rglob("*")):
        if p.is_file() and format_of(p) is not None:
            try:
                d = parse_file(p, p.relative_to(docs).as_posix())
            except Exception as e:  # noqa: BLE001 - a file the product skips is reported, not fatal
                print(f"note: {p.relative_to(docs)} not parsed: {e}", file=sys.stderr)
                continue
            parsed[d.path] = d
            headings.update(norm(h).lower().rstrip("?") for s in d.sections for h in s.heading_path)
    for g in gold:
        qid, f, anchor = g["query_id"], g["file"], g["anchor"]
        if qid not in queries:
            problems.append(f"{qid}: no query")
            continue
        if norm(queries[qid]).lower().rstrip("?") in headings:
            problems.append(f"{qid}: query is a heading: {queries[qid]!r}")
        if g.get("source") != f:
            problems.append(f"{qid}: source {g.get('source')!r} != file {f!r}")
        d = parsed.get(f)
        if d is None:
            problems.append(f"{qid}: no parsed file {f}")
            continue
        secs = [s for s in d.sections if (s.anchor or "") == anchor or (s.page and anchor == f"page={s.page}")]
        if not secs:
            problems.append(f"{qid}: {f} has no section #{anchor} (has {[s.anchor for s in d.sections]})")
            continue
        if not any(norm(g["answer"]) in norm(s.text) for s in secs):
            problems.append(f"{qid}: answer not verbatim in {f}#{anchor}: {g['answer'][:80]!r}")
        if len(g["answer"].split()) < 8:
            problems.append(f"{qid}: answer shorter than 8 words")
    return problems


def main(argv: list[str]) -> int:
    bad = 0
    for d in argv or []:
        problems = check(Path(d))
        for p in problems:
            print(f"{Path(d).name}: {p}")
        print(f"{Path(d).name}: {'ok' if not problems else f'{len(problems)} problems'}", file=sys.stderr)
        bad += len(problems)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
