"""Commit authors from git: the log parser on exact input, then a real repository made in the test,
ingested end to end (hashing embedder) so its commit authors reach filters and experts."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ingest.gitlog import contributors, parse_log
from ingest.pipeline import ingest
from km_search.search.filters import make_filters
from km_search.service import SearchService
from km_search.types import Contributor

R, Z = "\x1e", "\x00"


def test_parse_log_follows_renames_and_counts_commits_per_person():
    log = (
        f"{R}Cy Doe\tCy+git@X.example\t2024-05-03T10:00:00+02:00{Z}\nM{Z}docs/b.md{Z}M{Z}docs/c.md{Z}"
        f"{R}Ann Lee\tann@x.example\t2024-04-02T09:00:00+00:00{Z}\nR100{Z}docs/a.md{Z}docs/b.md{Z}"
        f"{R}Ann Lee\tann@x.example\t2024-03-01T09:00:00+00:00{Z}\nM{Z}docs/a.md{Z}"
        f"{R}Bob Ray\tbob@x.example\t2024-02-01T09:00:00+00:00{Z}\nA{Z}docs/a.md{Z}A{Z}docs/c.md{Z}"
        f"{R}Old Timer\told@x.example\t2020-01-01T09:00:00+00:00{Z}\nD{Z}docs/a.md{Z}"  # an earlier file named a.md
    )
    found = parse_log(log, ["docs/b.md", "docs/c.md", "docs/new.md"])
    assert found == {
        "docs/b.md": (Contributor("Ann Lee", "ann@x.example", 2, "2024-04-02"),
                      Contributor("Bob Ray", "bob@x.example", 1, "2024-02-01"),
                      Contributor("Cy Doe", "cy@x.example", 1, "2024-05-03")),
        "docs/c.md": (Contributor("Bob Ray", "bob@x.example", 1, "2024-02-01"),
                      Contributor("Cy Doe", "cy@x.example", 1, "2024-05-03")),
    }
    assert parse_log("", ["x.md"]) == {} and parse_log("garbage without records", ["x.md"]) == {}


def git(repo: Path, *args: str, name: str = "Ann Lee", email: str = "ann@x.example", date: str = "2024-01-01T10:00:00") -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email, "GIT_AUTHOR_DATE": date,
           "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email, "GIT_COMMITTER_DATE": date,
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env)


@pytest.fixture
def repo(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "wiki"
    (repo / "kafka").mkdir(parents=True)
    git(repo, "init", "-q")
    (repo / "kafka" / "tuning.md").write_text("# Kafka tuning\n\nKafka consumers lag when partitions are few.\n")
    (repo / "README.md").write_text("# Wiki\n\nTeam wiki.\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "first", date="2023-02-01T10:00:00")
    (repo / "kafka" / "tuning.md").write_text("# Kafka tuning\n\nKafka consumers lag when partitions are few. Add partitions.\n")
    git(repo, "commit", "-qam", "more", name="Bob Ray", email="Bob.Ray+work@X.example", date="2024-06-01T10:00:00")
    git(repo, "mv", "kafka/tuning.md", "kafka/kafka-tuning.md")
    git(repo, "commit", "-qm", "rename", name="Bob Ray", email="bob.ray@x.example", date="2024-07-01T10:00:00")
    (repo / "kafka" / "kafka-tuning.md").write_text("# Kafka tuning\n\nKafka consumers lag. Add partitions. Watch lag.\n")
    git(repo, "commit", "-qam", "bot", name="renovate[bot]", email="bot@x.example", date="2024-08-01T10:00:00")
    (repo / "kafka" / "untracked.md").write_text("# Draft\n\nKafka draft nobody committed.\n")
    return repo


def test_one_git_log_gives_each_file_its_authors_across_renames(repo, tmp_path):
    outside = tmp_path / "loose.md"
    outside.write_text("# Loose\n")
    found, warnings = contributors([repo / "kafka" / "kafka-tuning.md", repo / "kafka" / "untracked.md", outside])
    assert warnings == []
    assert found == {repo / "kafka" / "kafka-tuning.md": (
        Contributor("Bob Ray", "bob.ray@x.example", 2, "2024-07-01"),  # Bob.Ray+work@X.example is him too
        Contributor("Ann Lee", "ann@x.example", 1, "2023-02-01"),  # before the rename
        Contributor("renovate[bot]", "bot@x.example", 1, "2024-08-01"),  # left out later, by the store
    )}


def test_ingested_repository_has_commit_authors_for_filters_and_experts(repo, settings, fake_embedder):
    report = ingest([repo], settings, embedder=fake_embedder, progress=False)
    assert report.failed == [] and report.warnings == []
    service = SearchService(settings, embedder=fake_embedder)
    rows = service.retriever.snapshot.db.execute(
        "SELECT d.path, p.role, p.name, p.email, p.commits, p.last_date FROM people p JOIN documents d ON d.id = p.doc_id"
        " ORDER BY d.path, p.commits DESC, p.name").fetchall()
    assert [tuple(r) for r in rows] == [
        ("README.md", "contributor", "Ann Lee", "ann@x.example", 1, "2023-02-01"),
        ("kafka/kafka-tuning.md", "contributor", "Bob Ray", "bob.ray@x.example", 2, "2024-07-01"),  # +work merged
        ("kafka/kafka-tuning.md", "contributor", "Ann Lee", "ann@x.example", 1, "2023-02-01"),  # bot left out
    ]
    doc = service.retriever.snapshot.db.execute("SELECT modified FROM documents WHERE path = 'kafka/kafka-tuning.md'").fetchone()
    assert doc["modified"] == "2024-08-01"  # no declared date: the last commit's
    hits = service.search("kafka", k=5, filters=make_filters(authors="BOB")).hits
    assert [h.doc_path for h in hits] == ["kafka/kafka-tuning.md"]
    experts = service.experts("kafka consumer lag", k=3).experts
    assert [e.name for e in experts][:2] == ["Bob Ray", "Ann Lee"]
    assert experts[0].email == "bob.ray@x.example" and experts[0].evidence[0].source.startswith("kafka/kafka-tuning.md")
    assert dt.date.fromisoformat(experts[0].last_date)


def test_git_authors_can_be_turned_off(repo, settings, fake_embedder):
    ingest([repo], settings.model_copy(update={"git_authors": False}), embedder=fake_embedder, progress=False)
    service = SearchService(settings, embedder=fake_embedder)
    assert service.retriever.snapshot.db.execute("SELECT COUNT(*) FROM people").fetchone()[0] == 0


def test_bulk_commits_credit_nobody_but_renames_in_them_are_followed():
    many = "".join(f"A{Z}imported/{i}.md{Z}" for i in range(3))
    log = (f"{R}Ann Lee\tann@x.example\t2024-05-01T10:00:00+00:00{Z}\nM{Z}imported/0.md{Z}"
           f"{R}Importer\timp@x.example\t2024-04-01T10:00:00+00:00{Z}\nR100{Z}old/0.md{Z}imported/0.md{Z}{many}"
           f"{R}Bob Ray\tbob@x.example\t2020-01-01T10:00:00+00:00{Z}\nA{Z}old/0.md{Z}")
    found = parse_log(log, ["imported/0.md", "imported/1.md"], bulk=3)
    assert found == {"imported/0.md": (Contributor("Ann Lee", "ann@x.example", 1, "2024-05-01"),
                                       Contributor("Bob Ray", "bob@x.example", 1, "2020-01-01"))}
    assert parse_log(log, ["imported/1.md"], bulk=4)["imported/1.md"][0].name == "Importer"
