"""Files with nothing to index that are not broken (front matter only, redirect stubs, meta-refresh
pages) are reported as skipped with the reason, not as failed; a real empty file still fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import HashingEmbedder
from ingest.discovery import SourceFile
from ingest.pipeline import ingest, source_info
from ingest.stubs import front_matter_only, html_redirect
from ingest.workers import Skipped, _run, parse_one
from km_search.errors import NothingToIndex, ParseError
from km_search.settings import Settings

REFRESH = ('<!DOCTYPE html><html lang="en-US"><meta charset="utf-8"><title>Redirecting&hellip;</title>'
           '<link rel="canonical" href="https://handbook.example/people/leave/">'
           '<script>location="https://handbook.example/people/leave/"</script>'
           '<meta http-equiv="refresh" content="0; url=https://handbook.example/people/leave/">'
           '<meta name="robots" content="noindex"><h1>Redirecting&hellip;</h1>'
           '<a href="https://handbook.example/people/leave/">Click here if you are not redirected.</a></html>')


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_front_matter_only_and_redirect_stubs_are_recognized():
    assert front_matter_only("---\nredirect_to: /x/\n---\n") == "redirect stub to /x/: front matter only, nothing to index"
    assert front_matter_only("---\nredirect_to: [/a/, /b/]\n---\n\n").startswith("redirect stub to /a/")
    assert front_matter_only("---\ntitle: Placeholder\nlayout: page\n---\n") == "front matter only: no text to index"
    assert front_matter_only("---\ntitle: T\n---\nBody.\n") is None
    assert front_matter_only("") is None  # no front matter: an empty file, which fails
    assert html_redirect(REFRESH, 8) == "redirect page (meta refresh) to https://handbook.example/people/leave/: nothing to index"
    assert html_redirect(REFRESH, 500) is None  # a real page that also refreshes itself
    assert html_redirect("<p>no refresh</p>", 2) is None


@pytest.mark.parametrize(("name", "text", "reason"), [
    ("moved.md", "---\nredirect_to: /people/leave/\n---\n", "redirect stub to /people/leave/"),
    ("placeholder.md", "---\ntitle: Placeholder\n---\n\n", "front matter only"),
    ("old.html", REFRESH, r"redirect page \(meta refresh\) to https://handbook"),
])
def test_parse_one_raises_nothing_to_index(tmp_path, name, text, reason):
    path = write(tmp_path / name, text)
    file = SourceFile(path, name, root=tmp_path)
    with pytest.raises(NothingToIndex, match=reason):
        parse_one(file, Settings(), source_info(file))
    assert isinstance(_run(parse_one, file, Settings(), source_info(file)), Skipped)
    empty = write(tmp_path / "empty.md", "")
    with pytest.raises(ParseError) as err:
        parse_one(SourceFile(empty, "empty.md", root=tmp_path), Settings(), source_info(SourceFile(empty, "empty.md")))
    assert not isinstance(err.value, NothingToIndex)


def test_the_ingest_report_lists_them_as_skipped_with_the_reason(tmp_path):
    docs = tmp_path / "docs"
    write(docs / "leave.md", "# Leave policy\n\nTwenty-five days of paid leave a year.\n")
    write(docs / "holidays.md", "---\nredirect_to: /leave/\n---\n")
    write(docs / "old" / "leave.html", REFRESH)
    write(docs / "empty.md", "")
    write(docs / "notes.xyz", "an unsupported format")
    settings = Settings(index_dir=tmp_path / "indexes", index="t", parse_workers=0, git_authors=False)
    report = ingest([docs], settings, embedder=HashingEmbedder(), progress=False)
    assert report.documents == 1 and report.skipped == 1  # `skipped` still counts unsupported files
    assert [f["path"] for f in report.failed] == ["empty.md"]
    assert [(f["path"], f["reason"].split(":")[0]) for f in report.skipped_files] == [
        ("holidays.md", "redirect stub to /leave/"), ("old/leave.html", "redirect page (meta refresh) to https")]
    assert {f.path: f.status for f in report.files}["holidays.md"] == "skipped"
    assert report.to_json()["skipped_files"][0]["path"] == "holidays.md"
    # a page that becomes a redirect stub leaves the index
    write(docs / "leave.md", "---\nredirect_to: /people/leave/\n---\n")
    write(docs / "new.md", "# New\n\nSomething to index.\n")
    again = ingest([docs], settings, embedder=HashingEmbedder(), progress=False)
    assert again.removed == 1 and again.documents == 1
    assert "leave.md" in {f["path"] for f in again.skipped_files}
