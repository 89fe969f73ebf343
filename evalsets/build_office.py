"""Build office_govuk_aws: the adr_govuk_aws set's documents as Word, PDF and PowerPoint files.

    .venv/bin/python evalsets/build_office.py

The same 49 hand-written questions and gold answers as evalsets/adr_govuk_aws, over the same text
in office formats, so that a change can be judged on the formats employees actually keep:

- the decision records (architecture/decisions/*.md) become Word files (.docx): each heading a
  Word heading of its level (Heading 1-4), each line of a section's text a paragraph;
- the guides (guides/*.md) become PDF files (reportlab): headings as bold paragraphs, each section
  kept on one page where it fits, A4, Helvetica;
- the ADR index (architecture/README.md) becomes a PowerPoint deck (.pptx): one slide per section,
  the heading as the slide title, the text in the body placeholder.

The text converted is what the product's Markdown parser reads from each file (ingest.parsers,
read only), so every gold answer stays verbatim. Gold `file` is the new file; `anchor` is the
heading slug for Word, `page=N` for PDF and `slide=N` for PowerPoint, found by parsing the written
file with the product's parser. The output is deterministic (fixed document dates, reportlab's
invariant mode). Needs python-docx, python-pptx and reportlab (dev dependencies).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import sys
from pathlib import Path
from xml.sax.saxutils import escape

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from ingest.parsers import parse_file

SRC = HERE / "adr_govuk_aws"
OUT = HERE / "office_govuk_aws"
FIXED = dt.datetime(2024, 10, 24, 9, 41, 41)  # the source commit's date


def norm(s: str) -> str:
    return " ".join(s.split())


def lines_of(text: str) -> list[str]:
    return [line for line in (norm(x) for x in text.split("\n")) if line]


def fixed_zip(path: Path) -> None:
    """Rewrite an OOXML package with fixed entry dates, so two builds give the same bytes."""
    import zipfile

    with zipfile.ZipFile(path) as z:
        entries = [(i.filename, z.read(i.filename)) for i in z.infolist()]
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=FIXED.timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)


def to_docx(doc, dest: Path) -> None:
    import docx

    d = docx.Document()
    d.core_properties.title = doc.meta.title
    d.core_properties.created = d.core_properties.modified = FIXED
    d.core_properties.last_modified_by = d.core_properties.author = "GOV.UK"
    d.core_properties.revision = 1
    for s in doc.sections:
        if s.heading_path:
            d.add_heading(s.heading_path[-1], level=min(len(s.heading_path), 4))
        for line in lines_of(s.text):
            d.add_paragraph(line)
    d.save(dest)
    fixed_zip(dest)


def to_pdf(doc, dest: Path) -> None:
    from reportlab import rl_config

    rl_config.invariant = 1
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate

    styles = getSampleStyleSheet()
    story = []
    for s in doc.sections:
        block = []
        if s.heading_path:
            block.append(Paragraph(escape(s.heading_path[-1]), styles[f"Heading{min(len(s.heading_path), 3)}"]))
        block += [Paragraph(escape(line), styles["BodyText"]) for line in lines_of(s.text)]
        story.append(KeepTogether(block))
    SimpleDocTemplate(str(dest), pagesize=A4, title=doc.meta.title, author="GOV.UK", creator="build_office.py").build(story)


def to_pptx(doc, dest: Path) -> None:
    from pptx import Presentation

    prs = Presentation()
    prs.core_properties.title = doc.meta.title
    prs.core_properties.created = prs.core_properties.modified = FIXED
    prs.core_properties.last_modified_by = prs.core_properties.author = "GOV.UK"
    prs.core_properties.revision = 1
    layout = prs.slide_layouts[1]  # title and content
    for s in doc.sections:
        slide = prs.slides.add_slide(layout)
        slide.shapes.title.text = s.heading_path[-1] if s.heading_path else doc.meta.title
        body = slide.placeholders[1].text_frame
        for i, line in enumerate(lines_of(s.text)):
            p = body.paragraphs[0] if i == 0 else body.add_paragraph()
            p.text = line
    prs.save(dest)
    fixed_zip(dest)


def convert(rel: str) -> tuple[str, callable]:
    if rel.startswith("architecture/decisions/"):
        return re.sub(r"\.md$", ".docx", rel), to_docx
    if rel.startswith("guides/"):
        return re.sub(r"\.md$", ".pdf", rel), to_pdf
    return re.sub(r"\.md$", ".pptx", rel), to_pptx


def main() -> int:
    if OUT.exists():
        shutil.rmtree(OUT)
    (OUT / "docs").mkdir(parents=True)
    renamed = {}
    for p in sorted((SRC / "docs").rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(SRC / "docs").as_posix()
        dest_rel = rel
        if p.suffix == ".md":
            dest_rel, fn = convert(rel)
            (OUT / "docs" / dest_rel).parent.mkdir(parents=True, exist_ok=True)
            fn(parse_file(p, rel), OUT / "docs" / dest_rel)
        else:  # the licence, as is
            (OUT / "docs" / dest_rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, OUT / "docs" / dest_rel)
        renamed[rel] = dest_rel

    parsed = {}
    gold_out, problems = [], []
    with open(SRC / "gold.jsonl", encoding="utf-8") as f:
        gold_in = [json.loads(line) for line in f if line.strip()]
    for g in gold_in:
        f = renamed[g["file"]]
        if f not in parsed:
            parsed[f] = parse_file(OUT / "docs" / f, f)
        secs = [s for s in parsed[f].sections if norm(g["answer"]) in norm(s.text)]
        if not secs:
            problems.append(f"{g['query_id']}: answer not whole in one section of {f}")
            anchor = ""
        elif f.endswith(".docx"):
            same = [s for s in secs if s.anchor == g["anchor"]]
            anchor = (same or secs)[0].anchor
        elif f.endswith(".pdf"):
            anchor = f"page={secs[0].page}"
        else:
            anchor = secs[0].anchor
        gold_out.append({**g, "source": f, "file": f, "anchor": anchor})
    shutil.copyfile(SRC / "queries.jsonl", OUT / "queries.jsonl")
    with open(OUT / "gold.jsonl", "w", encoding="utf-8") as out:
        for g in gold_out:
            out.write(json.dumps(g, ensure_ascii=False) + "\n")
    kinds = {}
    for f in renamed.values():
        kinds[Path(f).suffix] = kinds.get(Path(f).suffix, 0) + 1
    size = sum(x.stat().st_size for x in (OUT / "docs").rglob("*") if x.is_file())
    meta = {
        "name": "office_govuk_aws",
        "about": "adr_govuk_aws converted to office formats: 38 decision records as Word (.docx), 8 guides as PDF, "
                 "the ADR index as PowerPoint (.pptx); the same 49 questions and gold answers",
        "source": "evalsets/adr_govuk_aws (alphagov/govuk-aws 81ee9f6e91fd8692fbf751ecf980c671c13aa3c0)",
        "built_by": "evalsets/build_office.py (python-docx, reportlab, python-pptx; deterministic)",
        "license": "MIT (Crown Copyright, Government Digital Service); docs/LICENCE",
        "docs": len(renamed), "docs_by_kind": kinds, "docs_bytes": size, "queries": len(gold_out),
        "anchors": "Word: heading slug; PDF: page=N; PowerPoint: slide=N (where the product's parser puts the answer)",
    }
    (OUT / "meta.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"office_govuk_aws: {kinds}, {len(gold_out)} queries, {size / 1e6:.2f} MB of documents")
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
