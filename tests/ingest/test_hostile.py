"""Hostile and broken inputs (issue 7): each file is ingested correctly or fails alone with a clear
reason, and no file can stall or crash a run. Every fixture is generated here; nothing binary is
committed. Tested at the discovery and ParsePool level, with real worker processes.
"""

from __future__ import annotations

import functools
import io
import os
import signal
import sys
import time
import zipfile
from pathlib import Path

import pytest

from ingest.discovery import SourceFile, scan
from ingest.parsers import parse_file
from ingest.workers import ParsedFile, ParsePool, parse_one
from km_search.errors import KmError, ParseError
from km_search.settings import Settings
from km_search.index.layout import SourceInfo
from test_parsers import reportlab_pdf, rewrite_pdf

pytestmark = pytest.mark.slow  # the real model, a server or worker processes: make test-fast skips it


def settings_for(tmp_path: Path, **overrides) -> Settings:
    return Settings(index_dir=tmp_path / "indexes", **{"parse_workers": 2, "parse_timeout_s": 20, **overrides})


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def job(path: Path, root: Path) -> tuple[SourceFile, SourceInfo]:
    file = SourceFile(path, path.relative_to(root).as_posix(), root=root)
    return file, SourceInfo(str(path), "not-hashed-here", os.stat(path).st_size)


def parse_all(settings: Settings, paths: list[Path], root: Path, **pool) -> dict[str, ParsedFile | str]:
    jobs = [job(p, root) for p in paths]
    with ParsePool(settings, **pool) as workers:
        return {file.rel: result for (file, _), result in zip(jobs, workers.parse(jobs))}


def text_of(result: ParsedFile | str) -> str:
    assert isinstance(result, ParsedFile), result
    return "\n".join(s.text for s in result.doc.sections)


# --- generated hostile files ------------------------------------------------------------------


def many_pages_pdf(pages: int) -> bytes:
    """A PDF of `pages` copies of one page (they share one content stream: 3000 pages, ~0.7 MB)."""
    from pypdf import PdfReader, PdfWriter

    one = PdfReader(io.BytesIO(reportlab_pdf([["A page of the turbine manual."]])))
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_page(one.pages[0])
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


@functools.lru_cache
def zip_bomb_docx(inflated_mb: int, lie: bool = False) -> bytes:
    """A DOCX whose word/document.xml inflates to `inflated_mb` MB from a few KB; with `lie`, the zip
    declares 1 KB for it (a bomb built to slip past size checks)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>')
        with z.open("word/document.xml", "w", force_zip64=True) as member:
            block = b"<w:t>" + b"A" * (1 << 20) + b"</w:t>"
            for _ in range(inflated_mb):
                member.write(block)
    data = buf.getvalue()
    if lie:  # patch the declared uncompressed size (zip64 extra field) in the central directory
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            size = z.getinfo("word/document.xml").file_size
        data = data.replace(size.to_bytes(8, "little"), (1024).to_bytes(8, "little"))
    return data


def make_docx(text: str) -> bytes:
    import docx

    d = docx.Document()
    d.add_heading("Valves", 1)
    d.add_paragraph(text)
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    """A folder holding good files in awkward encodings and broken or hostile ones."""
    root = tmp_path / "docs"
    write(root / "good.md", "# Turbines\n\nThe turbine spins at 3000 rpm.\n")
    write(root / "latin1.txt", "Caf\xe9 cr\xe8me: the na\xefve r\xe9sum\xe9 of the meeting.\n".encode("latin-1"))
    write(root / "utf16.txt", "Überstunden werden im März ausgezahlt.\n".encode("utf-16"))
    write(root / "script.html", "<html><head><title>Policy</title><script>var leaked = 'SCRIPTTEXT';</script></head>"
          "<body><h1>Policy</h1><p>Visitors sign in at the desk.</p><script>document.write('INJECTED')</script>"
          "</body></html>")  # fmt: skip
    write(root / "good.pdf", reportlab_pdf([["The pump manual"], ["Replace the seal every year."]]))
    write(root / "good.docx", make_docx("Close the valve before opening the housing."))
    pdf = reportlab_pdf([["Cover"], ["Secret page two."]])
    write(root / "truncated.pdf", pdf[: len(pdf) // 2])
    write(root / "encrypted.pdf", rewrite_pdf(pdf, encrypt="s3cret"))
    write(root / "thousands.pdf", many_pages_pdf(3000))
    write(root / "bomb.docx", zip_bomb_docx(1024))
    write(root / "lying-bomb.docx", zip_bomb_docx(64, lie=True))
    write(root / "binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 40)
    write(root / "renamed-zip.md", zip_bomb_docx(1))
    with open(root / "huge.txt", "wb") as f:  # 1 GB, sparse: costs nothing on disk
        f.write(b"Start of a huge log file.\n")
        os.truncate(f.fileno(), 1 << 30)
    return root


GOOD = {
    "good.md": "The turbine spins at 3000 rpm.",
    "latin1.txt": "Café crème: the naïve résumé of the meeting.",
    "utf16.txt": "Überstunden werden im März ausgezahlt.",
    "script.html": "Visitors sign in at the desk.",
    "good.pdf": "Replace the seal every year.",
    "good.docx": "Close the valve before opening the housing.",
}
BAD = {
    "truncated.pdf": "not a valid PDF",
    "encrypted.pdf": "encrypted PDF: needs a password",
    "thousands.pdf": "PDF has 3000 pages, over the 2000 page limit (KM_MAX_PAGES)",
    "bomb.docx": "not a valid DOCX: it would unpack to 1,024 MB, over the 256 MB a Word document may unpack to (a zip bomb?)",
    "lying-bomb.docx": "not a valid DOCX",
    "binary.txt": "binary file, not text",
    "renamed-zip.md": "binary file, not text",
    "huge.txt": "file is 1024 MB, over the 100 MB limit (KM_MAX_FILE_MB)",
}


def test_each_hostile_file_fails_alone_and_good_ones_are_parsed(hostile, tmp_path):
    found = scan([hostile])
    assert found.rejected == [] and found.skipped == 0
    assert sorted(f.rel for f in found.files) == sorted([*GOOD, *BAD])
    started = time.perf_counter()
    results = parse_all(settings_for(tmp_path), [f.path for f in found.files], hostile)
    took = time.perf_counter() - started
    for rel, expected in GOOD.items():
        assert text_of(results[rel]).endswith(expected), rel
    for rel, expected in BAD.items():
        assert isinstance(results[rel], str) and results[rel].startswith(expected), (rel, results[rel])
    html = text_of(results["script.html"])
    assert "SCRIPTTEXT" not in html and "INJECTED" not in html and "document.write" not in html
    assert took < 30, f"the hostile folder took {took:.1f} s"


def test_the_page_limit_is_a_setting(hostile, tmp_path):
    path = hostile / "thousands.pdf"
    results = parse_all(settings_for(tmp_path, max_pages=3000), [path], hostile)
    assert len(results["thousands.pdf"].doc.sections) == 3000
    results = parse_all(settings_for(tmp_path, max_pages=10, parse_workers=0), [path], hostile)
    assert results["thousands.pdf"] == "PDF has 3000 pages, over the 10 page limit (KM_MAX_PAGES)"


def test_zip_bomb_is_refused_before_anything_inflates(tmp_path):
    import resource

    path = write(tmp_path / "bomb.docx", zip_bomb_docx(1024))  # 1 GB of XML in 1 MB
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    with pytest.raises(ParseError, match=r"it would unpack to 1,024 MB, over the 256 MB"):
        parse_file(path, "bomb.docx")
    assert time.perf_counter() - started < 2
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # KB: nothing inflated


def test_a_zip_that_lies_about_its_sizes_is_cut_at_the_declared_size(tmp_path):
    path = write(tmp_path / "liar.docx", zip_bomb_docx(256, lie=True))
    started = time.perf_counter()
    with pytest.raises(ParseError, match="not a valid DOCX"):
        parse_file(path, "liar.docx")
    assert time.perf_counter() - started < 5


# --- discovery: links, special files, unreadable files ----------------------------------------


def test_symlinks_inside_the_root_are_indexed_once_and_outside_ones_are_rejected(tmp_path):
    root, outside = tmp_path / "docs", tmp_path / "private"
    write(outside / "secret.md", "# Secret\n\nsalaries\n")
    write(root / "guide.md", "# Guide\n\ntext\n")
    write(root / ".drafts" / "draft.md", "# Draft\n\ntext\n")
    (root / "alias.md").symlink_to(root / "guide.md")  # same file twice: indexed once, as guide.md
    (root / "published.md").symlink_to(root / ".drafts" / "draft.md")  # only reachable through the link
    (root / "leak.md").symlink_to(outside / "secret.md")
    (root / "private").symlink_to(outside, target_is_directory=True)
    (root / "sub").mkdir()
    (root / "sub" / "up").symlink_to(root, target_is_directory=True)  # a folder loop
    (root / "a.md").symlink_to(root / "b.md")
    (root / "b.md").symlink_to(root / "a.md")  # a link loop
    (root / "gone.md").symlink_to(root / "missing.md")
    started = time.perf_counter()
    found = scan([root])
    assert time.perf_counter() - started < 5
    assert [f.rel for f in found.files] == ["guide.md", "published.md"]
    assert dict(found.rejected) == {
        "a.md": "symbolic link loop: not followed",
        "b.md": "symbolic link loop: not followed",
        "gone.md": "broken symbolic link: its target does not exist",
        "leak.md": f"symbolic link to {outside / 'secret.md'}, outside the ingest root: not followed",
        "private": f"symbolic link to the folder {outside}, outside the ingest root: not followed",
    }


def test_special_files_are_rejected_and_a_folder_named_like_a_file_is_walked(tmp_path):
    root = tmp_path / "docs"
    write(root / "notes.md" / "inside.md", "# Inside\n\ntext\n")
    os.mkfifo(root / "pipe.txt")  # reading it would block forever
    started = time.perf_counter()
    found = scan([root])
    assert [f.rel for f in found.files] == ["notes.md/inside.md"]
    assert found.rejected == [("pipe.txt", "not a regular file (a named pipe)")]
    # and if one reaches the parser anyway (replaced after discovery), it fails alone, at once
    results = parse_all(settings_for(tmp_path), [root / "pipe.txt", root / "notes.md"], root)
    assert results == {"pipe.txt": "not a regular file (a named pipe)", "notes.md": "not a regular file (a folder)"}
    assert time.perf_counter() - started < 10


def as_another_user(check) -> None:
    """Run `check` where chmod counts: here, or in a forked child that dropped root for nobody."""
    if os.geteuid() != 0:
        check()
        return
    read, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no pytest machinery from here on, only os._exit
        os.close(read)
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            check()
            message = b""
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            message = f"{type(exc).__name__}: {exc}".encode() or b"failed"
        os.write(write_end, message)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read, "rb") as f:
        message = f.read().decode()
    os.waitpid(pid, 0)
    assert not message, message


def test_unreadable_files_and_folders_are_rejected(tmp_path):
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="km-unreadable-"))  # pytest's tmp_path is closed to other users
    try:
        root.chmod(0o755)
        write(root / "ok.md", "# Ok\n\nreadable text\n")
        locked = write(root / "locked.md", "# Locked\n\ntext\n")
        closed = write(root / "closed" / "inside.md", "# Inside\n\ntext\n").parent
        for path in (root / "ok.md", locked, closed / "inside.md"):
            path.chmod(0o644)
        locked.chmod(0)
        closed.chmod(0)

        def check() -> None:
            found = scan([root])
            assert [f.rel for f in found.files] == ["ok.md"], found.files
            assert found.rejected == [("closed", "cannot read folder: Permission denied"),
                                      ("locked.md", "cannot read file: permission denied")], found.rejected  # fmt: skip
            results = parse_all(settings_for(tmp_path, parse_workers=0), [locked, root / "ok.md"], root)
            assert results["locked.md"] == "cannot read file: Permission denied", results
            assert text_of(results["ok.md"]) == "readable text"

        as_another_user(check)
    finally:
        closed.chmod(0o755)
        import shutil

        shutil.rmtree(root)


def test_unreadable_files_are_rejected_even_when_running_as_root(tmp_path, monkeypatch):
    """Root reads through chmod 000, so fake the refusals the kernel would give another user."""
    import pathlib

    import ingest.discovery

    root = tmp_path / "docs"
    write(root / "ok.md", "# Ok\n\nreadable text\n")
    locked = write(root / "locked.md", "# Locked\n\ntext\n")
    late = write(root / "late.md", "# Late\n\ntext\n")
    real_access, real_read = os.access, pathlib.Path.read_bytes
    monkeypatch.setattr(ingest.discovery.os, "access", lambda p, mode: Path(p) != locked and real_access(p, mode))
    found = scan([root])
    assert [f.rel for f in found.files] == ["late.md", "ok.md"]
    assert found.rejected == [("locked.md", "cannot read file: permission denied")]

    def read_bytes(self):  # permissions taken away between discovery and parsing
        if self == late:
            raise PermissionError(13, "Permission denied", str(self))
        return real_read(self)

    monkeypatch.setattr(pathlib.Path, "read_bytes", read_bytes)
    results = parse_all(settings_for(tmp_path, parse_workers=0), [late, root / "ok.md"], root)
    assert results["late.md"] == "cannot read file: Permission denied"
    assert text_of(results["ok.md"]) == "readable text"


# --- the pool: timeouts, crashes, memory, isolation --------------------------------------------
# Misbehaving `work` functions stand in for a parser that hangs, crashes or eats memory; they run in
# the worker processes (imported there from this module).


def misbehave(file: SourceFile, settings: Settings, source: SourceInfo) -> ParsedFile:
    name = file.path.stem
    if name.startswith("hang"):
        time.sleep(600)
    elif name == "segfault":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif name == "killed":
        os.kill(os.getpid(), signal.SIGKILL)
    elif name == "hog":
        hoard = bytearray(3 << 30)  # 3 GB, over the cap
        hoard[-1] = 1
    elif name == "exit":
        os._exit(3)
    return parse_one(file, settings, source)


def probe(file: SourceFile, settings: Settings, source: SourceInfo) -> ParsedFile:
    """Reports, as a failure reason, what the worker process looks like."""
    import resource

    heavy = sorted(m for m in ("torch", "sentence_transformers", "transformers", "faiss") if m in sys.modules)
    cap = resource.getrlimit(resource.RLIMIT_AS)[0]
    (Path(file.path).parent / f"ran-{file.path.stem}").write_text(str(time.time()))
    raise KmError(f"pid={os.getpid()} heavy={','.join(heavy) or 'none'} cap={cap}")


def numbered(tmp_path: Path, names: list[str]) -> list[Path]:
    return [write(tmp_path / "docs" / f"{n}.md", f"# {n}\n\nText of {n}.\n") for n in names]


def test_a_hanging_file_times_out_its_worker_is_replaced_and_the_rest_go_on(tmp_path):
    paths = numbered(tmp_path, ["one", "hang", "two", "three", "hang-again", "four"])
    started = time.perf_counter()
    results = list(parse_all(settings_for(tmp_path, parse_timeout_s=1), paths, tmp_path / "docs", work=misbehave).values())
    took = time.perf_counter() - started
    assert results[1] == results[4] == "parsing took longer than 1 s (KM_PARSE_TIMEOUT_S); its worker was stopped"
    assert [text_of(r) for r in results[2:4]] == ["Text of two.", "Text of three."]
    assert text_of(results[0]) == "Text of one." and text_of(results[5]) == "Text of four."
    assert took < 15, took


@pytest.mark.parametrize("name, expected", [
    ("segfault", "the parser crashed on this file: its worker process was killed by SIGSEGV"),
    ("killed", "the parser crashed on this file: its worker process was killed by SIGKILL (out of memory? each worker may use 2048 MB, KM_PARSE_MEMORY_MB)"),
    ("exit", "the parser crashed on this file: its worker process exited with status 3"),
])  # fmt: skip
def test_a_worker_that_dies_fails_only_its_file(tmp_path, name, expected):
    paths = numbered(tmp_path, ["one", name, "two", "three", "four"])
    results = list(parse_all(settings_for(tmp_path), paths, tmp_path / "docs", work=misbehave).values())
    assert results[1] == expected
    assert [text_of(r) for i, r in enumerate(results) if i != 1] == ["Text of one.", "Text of two.", "Text of three.", "Text of four."]


def test_the_memory_cap_holds_and_fails_only_the_file(tmp_path):
    paths = numbered(tmp_path, ["one", "hog", "two"])
    results = list(parse_all(settings_for(tmp_path, parse_memory_mb=1024), paths, tmp_path / "docs", work=misbehave).values())
    assert results[1] == "parsing needed more memory than a parse worker may use (1024 MB, KM_PARSE_MEMORY_MB)"
    assert [text_of(results[0]), text_of(results[2])] == ["Text of one.", "Text of two."]
    capped = parse_all(settings_for(tmp_path, parse_memory_mb=1024), paths[:1], tmp_path / "docs", work=probe)
    assert f"cap={1024 * 1024 * 1024}" in capped["one.md"]


def test_workers_never_import_torch_even_when_the_parent_has(tmp_path):
    pytest.importorskip("torch")
    paths = numbered(tmp_path, ["one", "two", "three"])
    results = parse_all(settings_for(tmp_path), paths, tmp_path / "docs", work=probe)
    assert all("heavy=none" in r for r in results.values()), results
    assert {r.split()[0] for r in results.values()} != {f"pid={os.getpid()}"}


def test_parse_submits_every_job_before_its_results_are_read(tmp_path):
    paths = numbered(tmp_path, ["one", "two", "three", "four"])
    jobs = [job(p, tmp_path / "docs") for p in paths]
    with ParsePool(settings_for(tmp_path), work=probe) as pool:
        pending = pool.parse(jobs)  # not iterated yet: the pipeline embeds the previous batch now
        deadline = time.time() + 20
        while time.time() < deadline and len(list((tmp_path / "docs").glob("ran-*"))) < 4:
            time.sleep(0.05)
        assert len(list((tmp_path / "docs").glob("ran-*"))) == 4
        assert len(list(pending)) == 4


def test_in_process_mode_parses_in_this_process(tmp_path):
    paths = numbered(tmp_path, ["one", "two"])
    results = parse_all(settings_for(tmp_path, parse_workers=0), paths, tmp_path / "docs", work=probe)
    assert all(r.startswith(f"pid={os.getpid()} ") for r in results.values())
    good = parse_all(settings_for(tmp_path, parse_workers=0), paths, tmp_path / "docs")
    assert [text_of(r) for r in good.values()] == ["Text of one.", "Text of two."]
