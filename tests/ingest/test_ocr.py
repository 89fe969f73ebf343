"""Scanned PDFs: pages without a text layer are OCR'd with Tesseract (ingest/parsers/_ocr.py).

The scans are made at test time: real text (the Debian FAQ) drawn with a TrueType font into a
200 dpi greyscale image, saved as an image-only PDF page. Without tesseract-ocr (Debian:
`apt-get install tesseract-ocr tesseract-ocr-eng`; .ci/run installs it) the tests that need it are
skipped with that message; the ones about a missing or hanging tesseract run everywhere.
"""

from __future__ import annotations

import difflib
import io
import shutil
import stat
import textwrap
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from ingest.parsers import _ocr, parse_file
from km_search.errors import ParseError

DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")  # Debian fonts-dejavu-core
DPI = 200
needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None,
    reason="tesseract is not installed: apt-get install tesseract-ocr tesseract-ocr-eng (.ci/run does)",
)


def font(size: int = 30) -> ImageFont.FreeTypeFont:
    if DEJAVU.exists():
        return ImageFont.truetype(str(DEJAVU), size)
    return ImageFont.load_default(size)  # Pillow's own TrueType font, without fonts-dejavu-core


def scan(text: str, width_in: float = 8.5, height_in: float = 11.0) -> Image.Image:
    """A page of text as a scanner gives it: greyscale pixels, no text layer."""
    img = Image.new("L", (int(width_in * DPI), int(height_in * DPI)), 255)
    draw = ImageDraw.Draw(img)
    y = DPI
    for paragraph in text.split("\n"):
        for line in textwrap.wrap(paragraph, 70):
            draw.text((DPI, y), line, font=font(), fill=0)
            y += 44
        y += 22
    return img


def scanned_pdf(path: Path, pages: list[str]) -> Path:
    images = [scan(t) for t in pages]
    images[0].save(path, "PDF", resolution=DPI, save_all=True, append_images=images[1:])
    return path


def mixed_pdf(path: Path, pages: list[tuple[str, str]]) -> Path:
    """Pages with a text layer ('text', ...) and scanned ones ('scan', ...), in that order."""
    from reportlab.lib.pagesizes import letter
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=letter)
    for kind, text in pages:
        if kind == "text":
            y = 720
            for paragraph in text.split("\n"):
                for line in textwrap.wrap(paragraph, 90):
                    c.drawString(72, y, line)
                    y -= 14
        else:
            buf = io.BytesIO()
            scan(text).save(buf, "PNG")
            c.drawImage(ImageReader(io.BytesIO(buf.getvalue())), 0, 0, *letter)
        c.showPage()
    c.save()
    return path


def similar(ocr: str, truth: str) -> float:
    return difflib.SequenceMatcher(None, " ".join(ocr.split()), " ".join(truth.split())).ratio()


@pytest.fixture(scope="module")
def kernel(real):
    """Three answers of the Debian FAQ's kernel chapter."""
    doc = real.chapter("kernel")
    return [next(s.text for s in doc.sections if s.heading_path[-1].startswith(n)) for n in ("10.2.", "10.3.", "10.4.")]


@needs_tesseract
def test_scanned_pdf_is_read_by_ocr_page_by_page(tmp_path, kernel):
    doc = parse_file(scanned_pdf(tmp_path / "scan.pdf", kernel), "scans/kernel.pdf")
    assert [s.page for s in doc.sections] == [1, 2, 3]  # deep links stay #page=N
    for section, truth in zip(doc.sections, kernel):
        assert similar(section.text, truth) > 0.9, (section.text, truth)
    assert "linux-image-NNN.prerm" in doc.sections[2].text
    assert "ocr" not in doc.meta.extra  # every page was read


@needs_tesseract
def test_mixed_pdf_ocrs_only_the_scanned_pages(tmp_path, kernel, monkeypatch):
    path = mixed_pdf(tmp_path / "mixed.pdf", [("text", kernel[0]), ("scan", kernel[1]), ("text", kernel[2])])
    asked: list[list[int]] = []
    real_ocr_pages = _ocr.ocr_pages
    monkeypatch.setattr("ingest.parsers.pdf.ocr_pages", lambda p, pages: asked.append(pages) or real_ocr_pages(p, pages))
    doc = parse_file(path, "mixed.pdf")
    assert asked == [[1]]  # 0-based: the second page only
    pages = {s.page: s.text for s in doc.sections}
    assert sorted(pages) == [1, 2, 3]
    assert similar(pages[2], kernel[1]) > 0.9
    assert pages[1].startswith("Users who wish to (or must) build a custom kernel")  # the text layer, untouched


@needs_tesseract
def test_ocr_in_a_parse_worker_under_its_memory_cap(tmp_path, kernel):
    """Parse workers run with RLIMIT_AS = KM_PARSE_MEMORY_MB (2 GB): rendering and tesseract fit."""
    from ingest.discovery import SourceFile
    from ingest.pipeline import source_info
    from ingest.workers import ParsePool
    from km_search.settings import Settings

    path = scanned_pdf(tmp_path / "scan.pdf", kernel[2:])
    settings = Settings(index_dir=tmp_path / "idx", parse_workers=1)
    assert settings.parse_memory_mb > 0  # the cap is on
    file = SourceFile(path=path, rel="scan.pdf", root=tmp_path)
    with ParsePool(settings) as pool:
        (result,) = list(pool.parse([(file, source_info(file))]))
    assert not isinstance(result, str), result
    assert similar(result.doc.sections[0].text, kernel[2]) > 0.9


def hide_tesseract(monkeypatch) -> None:
    monkeypatch.setattr(_ocr.shutil, "which", lambda name, *a, **k: None)


def test_without_tesseract_a_scan_fails_with_the_install_hint(tmp_path, monkeypatch, kernel):
    hide_tesseract(monkeypatch)
    with pytest.raises(ParseError, match=r"^page 1 has no text layer; install tesseract-ocr to read scanned pages$"):
        parse_file(scanned_pdf(tmp_path / "one.pdf", kernel[:1]), "one.pdf")
    with pytest.raises(ParseError, match=r"^pages 1-3 have no text layer; install tesseract-ocr"):
        parse_file(scanned_pdf(tmp_path / "three.pdf", kernel), "three.pdf")


def test_without_tesseract_a_mixed_pdf_keeps_its_text_and_names_the_scanned_pages(tmp_path, monkeypatch, kernel):
    hide_tesseract(monkeypatch)
    path = mixed_pdf(tmp_path / "mixed.pdf", [("text", kernel[0]), ("scan", kernel[1]), ("text", kernel[2]), ("scan", kernel[0])])
    doc = parse_file(path, "mixed.pdf")
    assert [s.page for s in doc.sections] == [1, 3]
    assert doc.meta.extra["ocr"] == "pages 2, 4 have no text layer; install tesseract-ocr to read scanned pages"


def test_blank_pages_are_neither_ocrd_nor_reported(tmp_path, monkeypatch, kernel):
    from reportlab.pdfgen import canvas

    hide_tesseract(monkeypatch)
    c = canvas.Canvas(str(tmp_path / "blank.pdf"))
    c.drawString(72, 720, kernel[0][:80])
    c.showPage()
    c.showPage()  # an empty separator page
    c.save()
    doc = parse_file(tmp_path / "blank.pdf", "blank.pdf")
    assert [s.page for s in doc.sections] == [1]
    assert "ocr" not in doc.meta.extra


def fake_tesseract(tmp_path: Path, script: str) -> str:
    path = tmp_path / "tesseract"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_a_hanging_tesseract_is_stopped_and_the_page_reported(tmp_path, monkeypatch, kernel):
    monkeypatch.setattr(_ocr, "TESSERACT", fake_tesseract(tmp_path, "sleep 60 &\nwait\n"))  # a child holds the pipes
    monkeypatch.setattr(_ocr, "OCR_PAGE_TIMEOUT_S", 1.0)
    path = mixed_pdf(tmp_path / "mixed.pdf", [("text", kernel[0]), ("scan", kernel[1])])
    start = time.monotonic()
    doc = parse_file(path, "mixed.pdf")
    assert time.monotonic() - start < 10
    assert [s.page for s in doc.sections] == [1]
    assert doc.meta.extra["ocr"] == "page 2 has no text layer and OCR could not read it"


def test_the_ocr_time_budget_bounds_a_long_scan(tmp_path, monkeypatch, kernel):
    monkeypatch.setattr(_ocr, "TESSERACT", fake_tesseract(tmp_path, "sleep 0.4; echo 'read by OCR'\n"))
    monkeypatch.setattr(_ocr, "OCR_BUDGET_S", 2.0)
    doc = parse_file(scanned_pdf(tmp_path / "long.pdf", [kernel[0]] * 12), "long.pdf")
    read = [s.page for s in doc.sections]
    assert 1 <= len(read) < 12 and read == list(range(1, len(read) + 1))
    assert doc.meta.extra["ocr"] == f"pages {len(read) + 1}-12 were not OCR'd: the 2 s OCR time budget was spent"


def test_a_failing_tesseract_fails_the_scan_with_its_reason(tmp_path, monkeypatch, kernel):
    monkeypatch.setattr(_ocr, "TESSERACT", fake_tesseract(tmp_path, "echo 'Error opening data file eng.traineddata' >&2; exit 1\n"))
    with pytest.raises(ParseError, match=r"^page 1 has no text layer and OCR could not read it$"):
        parse_file(scanned_pdf(tmp_path / "one.pdf", kernel[:1]), "one.pdf")


def test_huge_pages_are_rendered_under_the_pixel_cap():
    scale = _ocr.render_scale(200 * 72, 200 * 72)  # a 200 x 200 inch poster
    assert (200 * 72 * scale) ** 2 <= _ocr.OCR_MAX_PIXELS
    assert _ocr.render_scale(612, 792) == pytest.approx(_ocr.OCR_DPI / 72)  # a letter page at full resolution


def test_pages_phrase():
    assert _ocr.pages_phrase([0], "has", "have") == "page 1 has"
    assert _ocr.pages_phrase([4, 0, 1, 2, 6], "has", "have") == "pages 1-3, 5, 7 have"

