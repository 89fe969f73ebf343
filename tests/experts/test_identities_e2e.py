"""One person per human, end to end: a git repository built in the test, with a .mailmap, a colleague
committing under an old laptop address, a GitHub handle and a personal address, a maintainer who
commits to every file and an author line without commas, ingested (hashing embedder) and asked through
SearchService.experts."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import HashingEmbedder
from ingest.pipeline import ingest
from km_search.service import SearchService
from km_search.settings import Settings


def git(repo: Path, *args: str, who: str, date: str) -> None:
    name, email = who.rsplit(" <", 1)
    env = {**os.environ, "GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email.rstrip(">"), "GIT_AUTHOR_DATE": date,
           "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email.rstrip(">"), "GIT_COMMITTER_DATE": date,
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env)


def commit(repo: Path, files: dict[str, str], who: str, date: str) -> None:
    for rel, text in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text, encoding="utf-8")
    git(repo, "add", "-A", who=who, date=date)
    git(repo, "commit", "-qm", "edit", who=who, date=date)


MAX = "Max Mustermann <max@corp.example>"
ADR = """---
authors: ['Ann Lee <ann@corp.example>']
status: accepted
---
# ADR 7: Use PostgreSQL for the ledger

## Context

The ledger needs transactions. PostgreSQL replication and vacuum tuning matter for the ledger.

## Decision

We use PostgreSQL for the ledger database.
"""


@pytest.fixture
def handbook(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "handbook"
    repo.mkdir()
    git(repo, "init", "-q", who=MAX, date="2024-01-01T10:00:00")
    others = {f"docs/adr/000{i}-{topic}.md": f"---\nauthors: ['Author{i} Person <a{i}@corp.example>']\n---\n"
              f"# ADR {i}: {topic}\n\n## Context\n\nThe {topic} service keeps a small PostgreSQL table.\n"
              for i, topic in ((1, "billing"), (2, "search"), (3, "mobile"), (4, "payroll"))}
    commit(repo, {".mailmap": "Priya Raman <priya@corp.example> <p.raman@old-laptop.local>\n", **others,
                  "docs/adr/0007-use-postgres.md": ADR}, MAX, "2024-12-01T10:00:00")
    for n in range(3):  # the maintainer keeps touching every file
        commit(repo, {rel: text + f"\n<!-- rev {n} -->\n" for rel, text in
                      {**others, "docs/adr/0007-use-postgres.md": ADR}.items()}, MAX, f"2024-12-0{n + 2}T10:00:00")
    notes = "Replication notes\nAuthors: Ann Lee <ann@corp.example> Bob Ray <bob@corp.example> Cy Doe\n\nWAL shipping.\n"
    commit(repo, {"wiki/replication.txt": notes}, "praman <p.raman@old-laptop.local>", "2024-12-10T10:00:00")  # mailmap
    commit(repo, {"wiki/vacuum.md": "# Vacuum\n\nPostgreSQL vacuum tuning for the ledger.\n"},
           "priyaraman <priya.raman@gmail.com>", "2024-12-11T10:00:00")  # a GitHub handle, a personal address
    commit(repo, {"wiki/vacuum.md": "# Vacuum\n\nPostgreSQL vacuum tuning for the ledger, autovacuum.\n"},
           "Priya Raman <priya@corp.example>", "2024-12-12T10:00:00")
    return repo


def test_one_entry_per_human_and_the_declared_author_first(handbook, tmp_path):
    settings = Settings(index_dir=tmp_path / "indexes", index="h", parse_workers=0, git_authors=True, expert_passages=20)
    embedder = HashingEmbedder()
    ingest([handbook], settings, embedder=embedder, progress=False)
    service = SearchService(settings, embedder=embedder)
    db = service.retriever.snapshot.db
    keys = {(name, email): key for name, email, key in db.execute("SELECT name, email, key FROM people")}
    priya = {key for (name, email), key in keys.items() if "priya" in (name + (email or "")).lower()}
    assert priya == {"priya@corp.example"}  # mailmap, handle + personal address, the work address: one person
    assert not any(name == "praman" or email == "p.raman@old-laptop.local" for name, email in keys)  # .mailmap applied
    listed = sorted(name for (name, _), key in keys.items() if key in ("ann@corp.example", "bob@corp.example", "name:cy doe"))
    assert {"Bob Ray", "Cy Doe"} <= set(listed)  # 'Name <email> Name <email> Name': three people
    experts = service.experts("PostgreSQL for the ledger", k=10).experts
    names = [e.name for e in experts]
    assert len(names) == len(set(names)) and names.count("Priya Raman") == 1
    assert names[0] == "Ann Lee"  # the declared author of the record, ahead of the maintainer
    assert experts[0].evidence[0].role == "author" and experts[0].evidence[0].source.startswith("docs/adr/0007")
    maintainer = next(e for e in experts if e.name == "Max Mustermann")
    assert {e.role for e in maintainer.evidence} == {"edited"}
    service.close()
