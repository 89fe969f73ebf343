"""Commit authors of files inside git working trees: one `git log` per repository, not one per file.

`git log --name-status -M` lists, newest commit first, the files each commit touched, renames as
(old, new) pairs. Walking it while remembering which older path each current file had gives what
`git log --follow FILE` gives for every file at once. Names and emails are git's own (%aN/%aE),
so the repository's .mailmap applies; emails are then normalized (km_search.people), so commits
made as 'Bob.Ray+work@X.example' and 'bob.ray@x.example' are one person's, under the newest name.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from km_search.text import fold
from km_search.experts.people import normalize_email
from km_search.types import Contributor

_RECORD, _FIELD = "\x1e", "\x00"
LOG_FORMAT = "%x1e%aN%x09%aE%x09%aI"
# A commit that touches more files than this (under the ingested folder) is an import, a move or a
# reformatting, not authorship: it is followed for renames but credits nobody and dates nothing.
BULK_COMMIT_FILES = 20


def repository_root(folder: Path, cache: dict[Path, Path | None]) -> Path | None:
    """The nearest folder at or above `folder` holding a .git (a folder, or a file for worktrees)."""
    seen: list[Path] = []
    current: Path | None = folder
    found: Path | None = None
    while current is not None:
        if current in cache:
            found = cache[current]
            break
        seen.append(current)
        if (current / ".git").exists():
            found = current
            break
        current = current.parent if current.parent != current else None
    for f in seen:
        cache[f] = found
    return found


def parse_log(
    output: str, current: Iterable[str], bulk: int = BULK_COMMIT_FILES
) -> dict[str, tuple[Contributor, ...]]:
    """Contributors of each current path (repository-relative) from `git log -z --name-status -M
    --format=LOG_FORMAT` output, most commits first. Renames are followed back; a path added, or
    renamed away, ends the history of the file now at that path; commits touching more than `bulk`
    files are not counted."""
    alias = {p: p for p in current}  # path at this point of history -> the current path it became
    stats: dict[str, dict[str, list]] = {p: {} for p in alias}  # current path -> email -> [name, commits, last]
    for record in output.split(_RECORD):
        header, _, changes = record.partition(_FIELD)
        fields = header.split("\t")
        if len(fields) != 3:
            continue
        name, email, date = (f.strip() for f in fields)
        touched: set[str] = set()
        files = 0
        tokens = [t for t in changes.lstrip("\n").split(_FIELD) if t]
        i = 0
        while i < len(tokens):
            status = tokens[i]
            if status[:1] in ("R", "C") and i + 2 < len(tokens):
                old, new = tokens[i + 1], tokens[i + 2]
                i += 3
                target = alias.get(new)
                if status[0] == "R":
                    alias.pop(new, None)
                    if target is not None:
                        alias[old] = target
            elif i + 1 < len(tokens):
                path = tokens[i + 1]
                i += 2
                target = alias.get(path)
                if status[:1] == "A":
                    alias.pop(path, None)
            else:
                break
            files += 1
            if target is not None:
                touched.add(target)
        if files > bulk:
            continue
        for target in touched:
            who = normalize_email(email) or "name:" + fold(name)  # one person, however their email was written
            entry = stats[target].setdefault(who, [name, 0, None])
            entry[1] += 1
            day = date[:10] or None
            if day and (entry[2] is None or day > entry[2]):
                entry[2] = day
    return {
        path: tuple(
            Contributor(name=n, email="" if e.startswith("name:") else e, commits=c, last_date=d)
            for e, (n, c, d) in sorted(people.items(), key=lambda item: (-item[1][1], item[1][0]))
        )
        for path, people in stats.items()
        if people
    }


def git_log(repo: Path, pathspec: str, timeout: float = 600) -> str | None:
    """The raw log of one repository, limited to a folder of it; None when git cannot give one."""
    command = ["git", "-C", str(repo), "-c", "core.quotepath=off", "log", "--no-merges", "-M", "--name-status",
               "-z", f"--format={LOG_FORMAT}", "--", pathspec]
    try:
        run = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return run.stdout.decode("utf-8", errors="replace") if run.returncode == 0 else None


def contributors(files: Sequence[Path]) -> tuple[dict[Path, tuple[Contributor, ...]], list[str]]:
    """Git contributors of each file that lies in a git working tree, and warnings to report.

    Files of one repository share one `git log`, limited to the folder that holds them all.
    Files outside any repository, untracked files and a missing git are simply left without.
    """
    cache: dict[Path, Path | None] = {}
    by_repo: dict[Path, list[Path]] = {}
    for f in files:
        root = repository_root(f.parent, cache)
        if root is not None:
            by_repo.setdefault(root, []).append(f)
    found: dict[Path, tuple[Contributor, ...]] = {}
    warnings: list[str] = []
    for repo, members in by_repo.items():
        rel = {f: f.relative_to(repo).as_posix() for f in members}
        common = os.path.commonpath([str(f.parent) for f in members])
        pathspec = Path(common).relative_to(repo).as_posix() if common != str(repo) else "."
        output = git_log(repo, pathspec)
        if output is None:
            warnings.append(f"{repo}: git could not read this repository's history (is git installed, and the "
                            "repository readable and trusted?); its files get no commit authors")
            continue
        by_path = parse_log(output, rel.values())
        for f, path in rel.items():
            if path in by_path:
                found[f] = by_path[path]
    return found, warnings
