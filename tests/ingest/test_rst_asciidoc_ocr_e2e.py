"""End to end through the public interface: `km ingest` a folder holding a reStructuredText chapter,
an AsciiDoc chapter and a scanned PDF (all real Debian FAQ text), serve it with `km serve`, and find
each over HTTP with its deep link: the docutils id, the Asciidoctor id, the scanned page."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.parse
import urllib.request

import pytest
from helpers import KM, start_server
from test_ocr import scanned_pdf
from test_rst_asciidoc import ADOC_HEADER, RST_FIELDS, adoc_of, rst_of

pytestmark = pytest.mark.slow
TESSERACT = shutil.which("tesseract") is not None


@pytest.fixture(scope="module")
def served(tmp_path_factory, real):
    root = tmp_path_factory.mktemp("rst-adoc-ocr")
    docs = root / "docs"
    (docs / "faq").mkdir(parents=True)
    (docs / "scans").mkdir()
    (docs / "faq" / "kernel.rst").write_text(rst_of(real.chapter("kernel"), RST_FIELDS))
    (docs / "faq" / "support.adoc").write_text(adoc_of(real.chapter("support"), ADOC_HEADER))
    getting = real.chapter("getting-debian")
    pages = [next(s.text for s in getting.sections if s.heading_path[-1].startswith(n)) for n in ("2.1.", "2.4.", "2.6.")]
    scanned_pdf(docs / "scans" / "getting-debian.pdf", pages)
    env = {**os.environ, "KM_INDEX_DIR": str(root / "indexes"), "HF_HUB_OFFLINE": "1", "KM_AUTH": "none"}
    run = subprocess.run([*KM, "ingest", str(docs), "--index", "rstadoc", "--json"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr
    base, proc = start_server("rstadoc", env, root / "serve.log")
    yield json.loads(run.stdout), base
    proc.terminate()
    proc.wait(timeout=30)


def search(base: str, query: str) -> list[dict]:
    with urllib.request.urlopen(f"{base}/search?{urllib.parse.urlencode({'q': query, 'k': 5})}", timeout=60) as r:
        return json.load(r)["hits"]


def test_every_file_is_ingested(served):
    report, _ = served
    added = {f["path"] for f in report["files"] if f["status"] == "added"}
    if TESSERACT:
        assert report["failed"] == [] and report["skipped"] == 0 and report["skipped_files"] == []
        assert added == {"faq/kernel.rst", "faq/support.adoc", "scans/getting-debian.pdf"}
    else:  # the scan is reported with the way to read it
        assert report["failed"] == [{"path": "scans/getting-debian.pdf",
                                     "error": "pages 1-3 have no text layer; install tesseract-ocr to read scanned pages"}]
        assert added == {"faq/kernel.rst", "faq/support.adoc"}


@pytest.mark.parametrize("query, link", [
    ("Can I safely de-install an old kernel package?",
     "faq/kernel.rst#can-i-safely-de-install-an-old-kernel-package-and-if-so-how"),
    ("What special provisions does Debian provide to deal with modules?",
     "faq/kernel.rst#what-special-provisions-does-debian-provide-to-deal-with-modules"),
    ("How do I report a bug in Debian?", "faq/support.adoc#_12_5_how_do_i_report_a_bug_in_debian"),
    ("What is the code of conduct for the mailing lists?",
     "faq/support.adoc#_12_2_1_1_what_is_the_code_of_conduct_for_the_mailing_lists"),
])  # fmt: skip
def test_rst_and_asciidoc_are_found_with_their_anchor(served, query, link):
    _, base = served
    hits = search(base, query)
    assert hits and hits[0]["source"] == link, [h["source"] for h in hits]


@pytest.mark.skipif(not TESSERACT, reason="tesseract is not installed: apt-get install tesseract-ocr tesseract-ocr-eng")
@pytest.mark.parametrize("query, link", [
    ("How do I install Debian from CD-ROMs?", "scans/getting-debian.pdf#page=2"),
    ("Can I install Debian directly from a remote Internet site?", "scans/getting-debian.pdf#page=3"),
])  # fmt: skip
def test_scanned_pages_are_found_by_their_ocr_text(served, query, link):
    _, base = served
    hits = search(base, query)
    assert link in [h["source"] for h in hits[:2]], [h["source"] for h in hits]
