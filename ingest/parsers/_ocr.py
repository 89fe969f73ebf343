"""OCR for PDF pages without a text layer (scans): pdfium renders the page, Tesseract reads it.

Tesseract is Debian's `tesseract-ocr` (+ `tesseract-ocr-eng`), run as a subprocess with `tesseract
IMAGE stdout`. Time and memory are bounded: each page gets OCR_PAGE_TIMEOUT_S (wall clock, and as
RLIMIT_CPU so a tesseract orphaned by a killed parse worker still stops), a document
OCR_BUDGET_S in all (below KM_PARSE_TIMEOUT_S' default of 120 s, so a long scan is indexed partly
rather than failed whole), and a page is rendered at OCR_DPI but at most OCR_MAX_PIXELS pixels,
in 8-bit grey. Without tesseract on PATH nothing is OCR'd and the caller says which pages it could
not read and how to fix that.
"""

from __future__ import annotations

import math
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

OCR_DPI = 300
OCR_MAX_PIXELS = 16_000_000  # ~A3 at 300 dpi; 16 MB of grey pixels, well inside a parse worker's cap
OCR_PAGE_TIMEOUT_S = 30.0
OCR_BUDGET_S = 90.0
OCR_LANGUAGES = "eng"
TESSERACT = "tesseract"
INSTALL_HINT = "install tesseract-ocr to read scanned pages"


@dataclass
class OcrOutcome:
    """Text read from pages (0-based page -> text), and the pages that could not be read, by reason."""

    texts: dict[int, str] = field(default_factory=dict)
    no_tesseract: list[int] = field(default_factory=list)  # pages with content but no text layer
    out_of_time: list[int] = field(default_factory=list)  # pages left once OCR_BUDGET_S was spent
    failed: list[int] = field(default_factory=list)  # pages pdfium or tesseract could not handle

    def notes(self) -> list[str]:
        """One human sentence per kind of page that stayed unread ('page 3 has no text layer; ...')."""
        out = []
        if self.no_tesseract:
            out.append(f"{pages_phrase(self.no_tesseract, 'has', 'have')} no text layer; {INSTALL_HINT}")
        if self.out_of_time:
            out.append(f"{pages_phrase(self.out_of_time, 'was', 'were')} not OCR'd: the {OCR_BUDGET_S:g} s OCR time budget was spent")
        if self.failed:
            out.append(f"{pages_phrase(self.failed, 'has', 'have')} no text layer and OCR could not read it")
        return out


def tesseract_path() -> str | None:
    return shutil.which(TESSERACT)


def ocr_pages(path: Path, pages: list[int]) -> OcrOutcome:
    """OCR the given 0-based pages of the PDF at `path`; pages that draw nothing are skipped silently."""
    outcome = OcrOutcome()
    if not pages:
        return outcome
    try:
        import pypdfium2 as pdfium
        import pypdfium2.raw as pdfium_raw

        pdf = pdfium.PdfDocument(str(path))
    except Exception:  # noqa: BLE001 - pdfium cannot open it (pypdf could): no OCR, say so
        outcome.failed.extend(pages)
        return outcome
    try:
        tesseract = tesseract_path()
        deadline = time.monotonic() + OCR_BUDGET_S
        for i in pages:
            try:
                page = pdf[i]
            except Exception:  # noqa: BLE001
                outcome.failed.append(i)
                continue
            try:
                if pdfium_raw.FPDFPage_CountObjects(page.raw) <= 0:
                    continue  # a blank page: nothing to read
                if tesseract is None:
                    outcome.no_tesseract.append(i)
                    continue
                left = deadline - time.monotonic()
                if left <= 1:
                    outcome.out_of_time.append(i)
                    continue
                text = ocr_page(page, tesseract, min(OCR_PAGE_TIMEOUT_S, left))
            except Exception:  # noqa: BLE001 - a page pdfium cannot render, a tesseract that fails
                outcome.failed.append(i)
                continue
            finally:
                page.close()
            if text:
                outcome.texts[i] = text
    finally:
        pdf.close()
    return outcome


def render_scale(width_pt: float, height_pt: float) -> float:
    """Pixels per PDF point: OCR_DPI, lowered for huge pages so the image stays under OCR_MAX_PIXELS."""
    scale = OCR_DPI / 72
    area = max(width_pt, 1.0) * max(height_pt, 1.0)
    if area * scale * scale > OCR_MAX_PIXELS:
        scale = math.sqrt(OCR_MAX_PIXELS / area)
    return scale


def ocr_page(page, tesseract: str, timeout: float) -> str:  # noqa: ANN001 - a pypdfium2 PdfPage
    """The page rendered in grey and read by tesseract; raises when tesseract fails or times out."""
    width, height = page.get_size()
    bitmap = page.render(scale=render_scale(width, height), grayscale=True)
    try:
        pixels = bitmap.to_numpy()
        if pixels.ndim == 3:  # pdfium chose a colour format after all: keep one channel
            pixels = pixels[..., 0]
        h, w = pixels.shape[:2]
        image = b"P5\n%d %d\n255\n" % (w, h) + pixels.tobytes()
    finally:
        bitmap.close()
    with tempfile.TemporaryDirectory(prefix="km-ocr-") as tmp:
        image_path = Path(tmp) / "page.pgm"
        image_path.write_bytes(image)
        del image
        return run_tesseract(tesseract, image_path, timeout)


def run_tesseract(tesseract: str, image: Path, timeout: float) -> str:
    cpu = max(2, math.ceil(timeout) + 1)

    def limit() -> None:  # runs in the child: the CPU limit outlives a parent that is killed
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))

    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}  # one thread: parse workers already run in parallel
    proc = subprocess.Popen(
        [tesseract, str(image), "stdout", "-l", OCR_LANGUAGES],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        preexec_fn=limit, start_new_session=True,
    )  # fmt: skip
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # its whole process group: nothing keeps the pipes open
        proc.communicate()
        raise
    if proc.returncode != 0:
        raise RuntimeError(err.decode("utf-8", "replace")[-500:])
    return out.decode("utf-8", "replace")


def pages_phrase(pages: list[int], singular: str, plural: str) -> str:
    """0-based pages as the reader counts them: 'page 3 has', 'pages 1-3, 7 have'."""
    numbers = sorted({p + 1 for p in pages})
    runs: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        runs.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    if len(numbers) == 1:
        return f"page {numbers[0]} {singular}"
    return f"pages {', '.join(runs)} {plural}"
