"""Score decision records and experts on real ADR/RFD collections (issue #17), through the product.

    .venv/bin/python evalsets/decisions_eval.py [SET_DIR] [--json OUT] [--work DIR] [--no-history]

SET_DIR (default evalsets/decisions_real) holds `docs/` and the labels: `decisions.jsonl`,
`supersessions.jsonl`, `not_decisions.jsonl`, optionally `experts.jsonl` and `history.jsonl`.
The scorer copies `docs/` into a work folder, replays `history.jsonl` there as a git repository (so
that ingest reads the source repositories' commit authors; `--no-history` leaves it a plain folder),
runs `km ingest` into a temporary index (KM_INDEX_DIR in the work folder, HF_HUB_OFFLINE=1), and asks
the service behind GET /decisions and GET /experts (SearchService.records / .experts, the objects
`km decisions --json` / `km experts --json` print):

- top3: the labelled record among the first 3 of /decisions for the question;
- status: the labelled record's status as /decisions gives it (the record looked up by path,
  wherever it ranks; a record not typed `decision` never appears in /decisions and counts as wrong);
- supersessions: for each stated supersession, the old record's `superseded_by` names the new one
  (by its number, id, file name or title, unambiguously within its collection); the new record's
  `supersedes` naming the old one is reported too;
- not_decisions: index pages, READMEs and templates that are typed `decision`;
- spurious: supersessions or a Superseded status reported where none is stated;
- experts (experts.jsonl): one human listed twice in a topic's list, several people as one entry,
  the record's declared author not first; and one human under several entries across topics.

Prints a table and, with --json, writes every number and every failure (question, expected, got).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SET = ROOT / "evalsets" / "decisions_real"
KNOWN_STATUSES = (
    "Proposed", "Draft", "Accepted", "Approved", "Final", "Rejected", "Deprecated", "Superseded", "Reverted",
    "Withdrawn", "Predraft", "Prediscussion", "Ideation", "Discussion", "Published", "Committed", "Abandoned",
)
THRESHOLDS = {"top3": 0.90, "status": 0.85, "supersessions": 1.0}
BOT = ("decisions-eval[bot]", "decisions-eval-bot@example.invalid")


# ---------------------------------------------------------------------------------------------- labels

def read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_set(set_dir: Path) -> dict:
    return {name: read_jsonl(set_dir / f"{name}.jsonl")
            for name in ("decisions", "supersessions", "not_decisions", "experts", "history")}


def _norm_text(text: str) -> str:
    return re.sub(r"[\W_]+", " ", fold(text)).strip()


def headings(docs: Path) -> set[str]:
    """Every heading and front-matter title of the set, normalized (a question must not be one)."""
    found = set()
    for f in docs.rglob("*"):
        if f.is_file() and f.suffix in (".md", ".adoc"):
            for line in f.read_text(encoding="utf-8", errors="replace").splitlines():
                m = re.match(r"^\s*(?:#{1,6}|={1,6})\s+(.+?)\s*#*\s*$", line) or re.match(r"^title:\s*(.+)$", line)
                if m:
                    found.add(_norm_text(m.group(1).strip("'\"")))
    return found


def check_labels(set_dir: Path, labels: dict) -> list[str]:
    """What is wrong with the labels themselves (an empty list when they are sound)."""
    docs = set_dir / "docs"
    problems = []
    heads = headings(docs)
    ids = set()
    for q in labels["decisions"]:
        if q["_id"] in ids:
            problems.append(f"{q['_id']}: duplicate id")
        ids.add(q["_id"])
        for key in ("file", "superseded_by"):
            if q.get(key) and not (docs / q[key]).is_file():
                problems.append(f"{q['_id']}: {key} {q[key]} is not in docs/")
        if q["status"] is not None and q["status"] not in KNOWN_STATUSES:
            problems.append(f"{q['_id']}: status {q['status']!r} is not a known status")
        if _norm_text(q["text"]) in heads:
            problems.append(f"{q['_id']}: the question is a heading of the set: {q['text']!r}")
    asked = {q["file"] for q in labels["decisions"]}
    for s in labels["supersessions"]:
        for side in ("old", "new"):
            if not (docs / s[side]).is_file():
                problems.append(f"supersession {s['old']} -> {s['new']}: {side} is not in docs/")
            elif s[side] not in asked:
                problems.append(f"supersession {s['old']} -> {s['new']}: no question on the {side} record")
        wanted = next((q.get("superseded_by") for q in labels["decisions"] if q["file"] == s["old"]), None)
        if wanted != s["new"]:
            problems.append(f"supersession {s['old']} -> {s['new']}: the old record's question says {wanted}")
    for n in labels["not_decisions"]:
        if not (docs / n["file"]).is_file():
            problems.append(f"not_decisions: {n['file']} is not in docs/")
    for e in labels["experts"]:
        if not (docs / e["record"]).is_file():
            problems.append(f"experts {e['topic']!r}: record {e['record']} is not in docs/")
    return problems


# ------------------------------------------------------------------------------------- work folder, git

def _git_time(iso: str) -> str:
    """'<unix seconds> <+hhmm>' for git fast-import from an ISO 8601 date with offset."""
    when = dt.datetime.fromisoformat(iso)
    offset = when.utcoffset() or dt.timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{int(when.timestamp())} {sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"


def _marker(path: str, n: int) -> bytes:
    return (f"\n// replay {n}\n" if path.endswith(".adoc") else f"\n<!-- replay {n} -->\n").encode()


def replay_history(docs: Path, history: list[dict]) -> int:
    """Make `docs` a git working tree whose log has the source commits that touched each file (their
    authors, emails and dates; the content of earlier versions is not kept, each commit changes a
    marker line), and a last commit by a bot restoring every file byte for byte. Commits that touched
    more than 20 files of the source's record folder (`bulk`) are left out: the product would not
    credit them had the whole folder been ingested. Returns the number of commits replayed."""
    final = {p.relative_to(docs).as_posix(): p.read_bytes() for p in docs.rglob("*") if p.is_file()}
    stream = bytearray()

    def blob(path: str, data: bytes) -> None:
        stream.extend(f"M 100644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n")

    def commit(name: str, email: str, when: str, message: str) -> None:
        msg = message.encode()
        stream.extend(f"commit refs/heads/main\nauthor {name} <{email}> {when}\ncommitter {name} <{email}> {when}\n"
                      f"data {len(msg)}\n".encode() + msg + b"\n")

    replayed = 0
    for n, c in enumerate(history):
        files = [f for f in c["files"] if f in final]
        if c.get("bulk") or not files:
            continue
        commit(c["author"].replace("<", "").replace(">", ""), c["email"], _git_time(c["date"]),
               f"{c['folder']} {c['commit']}")
        for f in files:
            blob(f, final[f] + _marker(f, n))
        replayed += 1
    last = max((c["date"] for c in history), default="2000-01-01T00:00:00+00:00")
    commit(*BOT, _git_time(last), "the set's files as copied")
    for f, data in sorted(final.items()):
        blob(f, data)
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", "init", "-q", "-b", "main", str(docs)], check=True, env=env)
    subprocess.run(["git", "-C", str(docs), "fast-import", "--quiet"], input=bytes(stream), check=True, env=env)
    subprocess.run(["git", "-C", str(docs), "reset", "-q"], check=True, env=env)
    return replayed


def prepare(set_dir: Path, work: Path, labels: dict, history: bool = True) -> tuple[Path, int]:
    docs = work / "docs"
    if docs.exists():
        shutil.rmtree(docs)
    shutil.copytree(set_dir / "docs", docs)
    replayed = replay_history(docs, labels["history"]) if history and labels["history"] else 0
    return docs, replayed


def _env(work: Path) -> dict:
    return {**os.environ, "KM_INDEX_DIR": str(work / "index"), "HF_HUB_OFFLINE": "1"}


def ingest(docs: Path, work: Path) -> dict:
    """`km ingest DOCS --json` into the work folder's index (the product's command line)."""
    run = subprocess.run([sys.executable, "-m", "km_search.cli", "ingest", str(docs), "--json"],
                         capture_output=True, text=True, env=_env(work), timeout=3600, cwd=str(ROOT))
    if run.returncode != 0:
        raise RuntimeError(f"km ingest failed ({run.returncode}): {run.stderr[-2000:]}")
    return json.loads(run.stdout)


# -------------------------------------------------------------------------------------------- people

def fold(text: str) -> str:
    plain = "".join(c for c in unicodedata.normalize("NFKD", text or "") if not unicodedata.combining(c))
    return re.sub(r"\s+", " ", plain.casefold()).strip()


def _email(email: str | None) -> str | None:
    email = fold(email or "").strip("<>")
    if "@" not in email:
        return None
    local, _, domain = email.rpartition("@")
    if domain == "users.noreply.github.com":  # 12345+handle@users.noreply.github.com
        return "handle:" + local.split("+")[-1]
    return local.split("+", 1)[0] + "@" + domain


def _tokens(name: str) -> list[str]:
    words = re.sub(r"\(.*?\)", " ", fold(name))
    words = re.sub(r"[^\w@.]+|(?<=[a-z])\.(?=\s|$)", " ", words).replace(".", " ").split()
    return [w for w in words if len(w) > 1 and "@" not in w]


def _split_camel(name: str) -> str:
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name or "")


def identity(name: str, email: str | None) -> dict:
    """What says who a listed person is: email, name tokens, and the handles they could be written as."""
    raw = (name or "").strip()
    tokens = _tokens(_split_camel(raw)) if re.fullmatch(r"[A-Za-z]+(?:[A-Z][a-z]+)+", raw) else _tokens(raw)
    e = _email(email) or (_email(raw) if "@" in raw and " " not in raw else None)
    handles = set()
    if e and e.startswith("handle:"):
        handles.add(e[7:])
    elif e:
        local = e.split("@")[0]
        handles.add(local.replace(".", ""))
        if "." in local and not tokens:
            tokens = [t for t in local.split(".") if len(t) > 1]
    if len(tokens) == 1:
        handles.add(tokens[0])
    return {"name": name, "email": email, "key_email": e if e and not e.startswith("handle:") else None,
            "tokens": tokens, "handles": handles}


def _spellings(tokens: list[str]) -> set[str]:
    if len(tokens) < 2:
        return set()
    first, last = tokens[0], tokens[-1]
    return {first + last, first[0] + last, last + first, first + last[0], "".join(tokens)}


def same_human(a: dict, b: dict) -> str | None:
    """Why a and b are one human (None when nothing says so)."""
    if a["key_email"] and a["key_email"] == b["key_email"]:
        return f"same email {a['key_email']}"
    ta, tb = a["tokens"], b["tokens"]
    if len(ta) >= 2 and len(tb) >= 2 and ta[0] == tb[0] and ta[-1] == tb[-1]:
        return f"same name {' '.join(ta)!r} / {' '.join(tb)!r}"
    for x, y in ((a, b), (b, a)):
        hit = x["handles"] & (_spellings(y["tokens"]) | y["handles"])
        if hit:
            return f"handle {sorted(hit)[0]!r} spells {y['name']!r}"
    return None


def several_people(name: str, email: str | None) -> bool:
    """An entry whose name is a list of people ('A <a@x> B <b@x>', 'A, B', 'a@x,b@x')."""
    text = f"{name or ''} {email or ''}"
    return len(re.findall(r"[\w.+-]+@[\w-]+\.[\w.-]+", text)) > 1 or "<" in (name or "") or \
        bool(re.search(r",|\band\b|;", name or "")) or len(_tokens(name or "")) > 4


# ---------------------------------------------------------------------------------------- evaluation

def _number(path: str) -> int | None:
    """The record's number: the first digit run of its file name, or of its folder for rfd/0042/README."""
    parts = path.split("/")
    for part in (parts[-1], parts[-2] if len(parts) > 1 else ""):
        m = re.search(r"\d+", part)
        if m and not part.lower().startswith("readme"):
            return int(m.group())
    return None


def _collection(path: str) -> str:
    return path.split("/", 1)[0]


def _title_key(title: str) -> str:
    """A title without its leading number: '15. DNS infrastructure', 'ADR-015: X' -> 'dns infrastructure'."""
    return _norm_text(re.sub(r"^\s*(?:(?:adr|rfd|rfc)[\s#-]*)?\d+\s*[.:)-]?\s+", "", title or "", flags=re.I))


def resolve(ref: str | None, collection: str, records: dict[str, dict]) -> list[str]:
    """The files of `collection` a superseded_by / supersedes value could name."""
    if not ref:
        return []
    same = {f: r for f, r in records.items() if _collection(f) == collection}
    by_file = [f for f in same if re.search(r"\d", Path(f).stem) and Path(f).stem.lower() in ref.lower()]
    if by_file:
        return by_file
    for key in (_norm_text, _title_key):  # the title as written, then without its number
        by_title = [f for f, r in same.items() if r.get("title") and key(r["title"]) == key(ref)]
        if by_title:
            return by_title
    numbers = {int(n) for n in re.findall(r"\d+", ref)}
    return [f for f in same if _number(f) in numbers] if len(numbers) == 1 else []


def _query_for(path: str) -> str:
    stem = Path(path).stem if Path(path).stem.lower() != "readme" else Path(path).parent.name
    words = re.sub(r"[\W_]+", " ", stem).strip()
    return words or "decision"


class Probe:
    """The product's answers, through SearchService (the functions behind GET /decisions, /search, /experts)."""

    def __init__(self, work: Path):
        os.environ.update(KM_INDEX_DIR=str(work / "index"), HF_HUB_OFFLINE="1")
        logging.disable(logging.WARNING)
        from km_search.service import SearchService
        from km_search.settings import Settings

        self.service = SearchService(Settings())
        self._records: dict[str, dict | None] = {}

    def decisions(self, query: str, k: int = 10, path: str | None = None) -> list[dict]:
        from km_search.cli.output import record_json
        from km_search.search.filters import make_filters

        filters = make_filters(paths=[path] if path else None)
        return [record_json(h) for h in self.service.records(query, "decision", k=k, filters=filters).hits]

    def record(self, path: str, query: str | None = None) -> dict:
        """The document at `path` as /decisions gives it, else as /search does (its type, status)."""
        if path not in self._records:
            from km_search.cli.output import hit_json
            from km_search.search.filters import make_filters

            found = self.decisions(query or _query_for(path), k=1, path=path)
            if found:
                self._records[path] = {**found[0], "listed": True}
            else:
                hits = self.service.search(query or _query_for(path), k=1, filters=make_filters(paths=[path])).hits
                hit = hit_json(hits[0]) if hits else None
                self._records[path] = {"listed": False, "type": hit and hit["type"], "status": hit and hit["status"],
                                       "title": hit and hit["title"], "superseded_by": None, "supersedes": None,
                                       "indexed": bool(hit)}
        return self._records[path]

    def experts(self, topic: str, k: int = 5) -> list[dict]:
        from km_search.cli.output import expert_json

        return [expert_json(e) for e in self.service.experts(topic, k=k).experts]


def _brief(r: dict) -> dict:
    return {k: r.get(k) for k in ("doc_path", "title", "status", "superseded_by", "supersedes")}


def evaluate(labels: dict, docs: Path, probe: Probe, k: int = 3) -> dict:
    questions, failures = labels["decisions"], {}
    all_files = sorted(p.relative_to(docs).as_posix() for p in docs.rglob("*")
                       if p.is_file() and ".git" not in p.parts and p.suffix in (".md", ".adoc"))
    for q in questions:
        probe.record(q["file"], q["text"])
    records = {f: probe.record(f) for f in all_files}

    # top 3 of /decisions
    top_fail, per_question = [], []
    for q in questions:
        listed = probe.decisions(q["text"], k=10)
        paths = [r["doc_path"] for r in listed]
        rank = paths.index(q["file"]) + 1 if q["file"] in paths else None
        per_question.append({"_id": q["_id"], "rank": rank})
        if rank is None or rank > k:
            rec = records[q["file"]]
            cause = (f"not a decision (typed {rec.get('type')})" if not rec["listed"]
                     else f"ranked {rank}" if rank else "not in the first 10")
            top_fail.append({"_id": q["_id"], "question": q["text"], "expected": q["file"], "cause": cause,
                             "got": [_brief(r) for r in listed[:k]]})
    failures["top3"] = top_fail

    # status of the labelled record
    status_fail, scored = [], [q for q in questions if q["status"] is not None]
    for q in scored:
        rec = records[q["file"]]
        got = rec.get("status")
        if not rec["listed"] or (got or "").strip().lower() != q["status"].lower():
            status_fail.append({"_id": q["_id"], "file": q["file"], "expected": q["status"],
                                "written": q.get("status_written"), "got": got,
                                "listed_as_decision": rec["listed"], "type": rec.get("type", "decision")})
    failures["status"] = status_fail

    # supersessions
    sup_fail, new_side_fail, labelled_pairs = [], [], set()
    for s in labels["supersessions"]:
        old, new = records[s["old"]], records[s["new"]]
        labelled_pairs.add((s["old"], s["new"]))
        named = resolve(old.get("superseded_by"), _collection(s["old"]), records)
        if named != [s["new"]]:
            why = ("old record not listed as a decision" if not old["listed"] else
                   "superseded_by empty" if not old.get("superseded_by") else
                   f"superseded_by {old['superseded_by']!r} names {named or 'no record'}" +
                   (" (ambiguous)" if len(named) > 1 else ""))
            sup_fail.append({"old": s["old"], "new": s["new"], "stated_in": s["stated_in"], "cause": why,
                             "evidence": s.get("evidence"), "got_old": _brief(old), "got_new": _brief(new)})
        back = resolve(new.get("supersedes"), _collection(s["new"]), records)
        if back != [s["old"]]:
            new_side_fail.append({"old": s["old"], "new": s["new"], "stated_in": s["stated_in"],
                                  "got_new_supersedes": new.get("supersedes"), "names": back})
    failures["supersessions"] = sup_fail
    failures["supersessions_new_side"] = new_side_fail

    # spurious supersession reports
    olds = {o for o, _ in labelled_pairs}
    news = {n for _, n in labelled_pairs}
    spurious = []
    for f, r in records.items():
        extra = []
        if r.get("superseded_by") and f not in olds:
            extra.append(f"superseded_by {r['superseded_by']!r}")
        if (r.get("status") or "").lower() == "superseded" and f not in olds:
            extra.append("status Superseded")
        if r.get("supersedes") and f not in news:
            extra.append(f"supersedes {r['supersedes']!r}")
        if extra:
            spurious.append({"file": f, "reported": extra})
    failures["spurious_supersessions"] = spurious

    # not decisions
    nd_fail = []
    for n in labels["not_decisions"]:
        r = records[n["file"]]
        appears = sum(1 for q in questions for x in probe.decisions(q["text"], k=10) if x["doc_path"] == n["file"])
        if r["listed"]:
            nd_fail.append({"file": n["file"], "why_not": n.get("why"), "got": _brief(r),
                            "in_top10_of_questions": appears})
    failures["not_decisions"] = nd_fail

    # every record of the set not typed decision (beyond the labelled questions)
    nd_files = {n["file"] for n in labels["not_decisions"]}
    untyped = [{"file": f, "type": r.get("type"), "status": r.get("status")} for f, r in records.items()
               if not r["listed"] and f not in nd_files]
    failures["records_not_typed_decision"] = untyped

    result = {
        "questions": len(questions), "k": k,
        "top3": round(1 - len(top_fail) / len(questions), 4) if questions else None,
        "status_questions": len(scored),
        "status": round(1 - len(status_fail) / len(scored), 4) if scored else None,
        "supersessions_labelled": len(labels["supersessions"]),
        "supersessions": round(1 - len(sup_fail) / len(labels["supersessions"]), 4)
        if labels["supersessions"] else None,
        "supersessions_new_side": round(1 - len(new_side_fail) / len(labels["supersessions"]), 4)
        if labels["supersessions"] else None,
        "not_decisions_labelled": len(labels["not_decisions"]),
        "not_decisions_listed": len(nd_fail),
        "records": len(records), "records_listed_as_decisions": sum(1 for r in records.values() if r["listed"]),
        "mrr": round(sum(1 / p["rank"] for p in per_question if p["rank"]) / len(questions), 4) if questions else None,
        "per_collection": {},
        "ranks": per_question,
    }
    for c in sorted({_collection(q["file"]) for q in questions}):
        qs = [q for q in questions if _collection(q["file"]) == c]
        tf = sum(1 for f in top_fail if _collection(f["expected"]) == c)
        ss = [q for q in qs if q["status"] is not None]
        sf = sum(1 for f in status_fail if _collection(f["file"]) == c)
        result["per_collection"][c] = {"questions": len(qs), "top3": round(1 - tf / len(qs), 4),
                                       "status": round(1 - sf / len(ss), 4) if ss else None}
    if labels["experts"]:
        result["experts"], failures["experts"] = evaluate_experts(labels["experts"], probe)
    result["failures"] = failures
    return result


def evaluate_experts(labelled: list[dict], probe: Probe, k: int = 5) -> tuple[dict, dict]:
    dup, merged, not_first, not_author, lists = [], [], [], [], []
    for e in labelled:
        people = probe.experts(e["topic"], k=k)
        ids = [identity(p["name"], p["email"]) for p in people]
        lists.append((e["topic"], ids))
        for i in range(len(ids)):
            if several_people(people[i]["name"], people[i]["email"]):
                merged.append({"topic": e["topic"], "entry": {"name": people[i]["name"], "email": people[i]["email"]}})
            for j in range(i + 1, len(ids)):
                why = same_human(ids[i], ids[j])
                if why:
                    dup.append({"topic": e["topic"], "first": f"#{i + 1} {people[i]['name']} <{people[i]['email']}>",
                                "second": f"#{j + 1} {people[j]['name']} <{people[j]['email']}>", "why": why})
        want = identity(*_person(e["expected_first"]))
        where = next((i for i, x in enumerate(ids) if same_human(x, want)), None)
        roles = [ev["role"] for ev in people[where]["evidence"] if ev["source"].split("#")[0] == e["record"]] \
            if where is not None else []
        if "author" not in roles:
            not_author.append({"topic": e["topic"], "record": e["record"], "expected": e["expected_first"],
                               "declared": e.get("declared"),
                               "got": "not in the list" if where is None else f"#{where + 1} "
                               f"{people[where]['name']}, role on the record: {roles or 'not in evidence'}"})
        if not ids or not same_human(ids[0], want):
            not_first.append({"topic": e["topic"], "record": e["record"], "expected_first": e["expected_first"],
                              "got": [f"{p['name']} <{p['email']}> ({p['score']:.3f}; "
                                      + ", ".join(sorted({ev['role'] for ev in p['evidence']})) + ")"
                                      for p in people]})
    # one human under several entries across the topics' lists
    entries: dict[tuple, dict] = {}
    for _topic, ids in lists:
        for i in ids:
            entries.setdefault((i["name"], i["email"]), i)
    split, items = [], list(entries.values())
    for a in range(len(items)):
        for b in range(a + 1, len(items)):
            why = same_human(items[a], items[b])
            if why:
                split.append({"entries": [f"{items[a]['name']} <{items[a]['email']}>",
                                          f"{items[b]['name']} <{items[b]['email']}>"], "why": why})
    n = len(labelled)
    scores = {"topics": n, "declared_author_first": round(1 - len(not_first) / n, 4),
              "declared_author_credited_as_author": round(1 - len(not_author) / n, 4),
              "topics_with_a_duplicate": len({d["topic"] for d in dup}), "duplicates": len(dup),
              "several_people_as_one": len(merged), "identities_split_across_topics": len(split)}
    return scores, {"duplicates": dup, "several_people_as_one": merged, "declared_author_not_first": not_first,
                    "declared_author_not_credited_as_author": not_author,
                    "identities_split_across_topics": split}


def _person(text: str) -> tuple[str, str | None]:
    m = re.match(r"^(.*?)\s*<([^>]*)>\s*$", text or "")
    return (m.group(1), m.group(2)) if m else (text, None)


# ----------------------------------------------------------------------------------------------- run

def run(set_dir: Path = DEFAULT_SET, work: Path | None = None, history: bool = True, reuse: bool = False) -> dict:
    """Ingest the set and score it: the core the test calls. `reuse` skips the copy and ingest when
    the work folder already has them (for quick re-scoring)."""
    labels = load_set(set_dir)
    problems = check_labels(set_dir, labels)
    if problems:
        raise ValueError("the labels are not sound:\n" + "\n".join(problems))
    own = work is None
    work = Path(tempfile.mkdtemp(prefix="decisions-eval-")) if own else work
    try:
        if reuse and (work / "index").exists():
            docs, replayed, report = work / "docs", None, None
        else:
            docs, replayed = prepare(set_dir, work, labels, history)
            report = ingest(docs, work)
        result = evaluate(labels, docs, Probe(work))
        result["ingest"] = report and {k: report.get(k) for k in ("documents", "chunks", "skipped", "took_s")} | {
            "failed": report.get("failed"), "skipped_files": report.get("skipped_files")}
        result["history_commits_replayed"] = replayed
        result["set"] = str(set_dir)
        return result
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)


def passed(result: dict) -> dict[str, bool]:
    return {"top3": result["top3"] >= THRESHOLDS["top3"], "status": result["status"] >= THRESHOLDS["status"],
            "supersessions": result["supersessions"] >= THRESHOLDS["supersessions"],
            "no_index_page_a_decision": result["not_decisions_listed"] == 0}


def print_table(result: dict) -> None:
    print(f"{'measure':<44} {'value':>8}  target")
    rows = [("top-3 of /decisions", result["top3"], ">= 0.90"), ("status of the record", result["status"], ">= 0.85"),
            ("stated supersessions found (old side)", result["supersessions"], "1.00"),
            ("  ... new record names the old", result["supersessions_new_side"], ""),
            ("index pages / templates listed as decisions", result["not_decisions_listed"], "0"),
            ("MRR@10 of the labelled record", result["mrr"], "")]
    if "experts" in result:
        ex = result["experts"]
        rows += [("experts: declared author first", ex["declared_author_first"], "1.00"),
                 ("experts: declared author shown as author", ex["declared_author_credited_as_author"], "1.00"),
                 ("experts: topics with one human twice", ex["topics_with_a_duplicate"], "0"),
                 ("experts: entries holding several people", ex["several_people_as_one"], "0"),
                 ("experts: one human, several entries (all topics)", ex["identities_split_across_topics"], "")]
    for name, value, target in rows:
        print(f"{name:<44} {value if isinstance(value, int) else f'{value:.3f}':>8}  {target}")
    print(f"\n{'collection':<32} {'questions':>9} {'top3':>6} {'status':>6}")
    for c, v in result["per_collection"].items():
        status = "-" if v["status"] is None else f"{v['status']:.2f}"
        print(f"{c:<32} {v['questions']:>9} {v['top3']:>6.2f} {status:>6}")
    f = result["failures"]
    print(f"\nfailures: top3 {len(f['top3'])}, status {len(f['status'])}, supersessions {len(f['supersessions'])} "
          f"(new side {len(f['supersessions_new_side'])}), not_decisions {len(f['not_decisions'])}, "
          f"spurious supersessions {len(f['spurious_supersessions'])}, "
          f"records not typed decision {len(f['records_not_typed_decision'])}")
    for x in f["top3"]:
        print(f"  top3   {x['_id']}: {x['cause']}: {x['expected']}")
    for x in f["status"]:
        print(f"  status {x['_id']}: expected {x['expected']}, got {x['got']!r}"
              + ("" if x["listed_as_decision"] else f" (typed {x['type']})") + f"  [{x['written']}]")
    for x in f["supersessions"]:
        print(f"  supersession {x['old']} -> {x['new']}: {x['cause']}")
    for x in f["not_decisions"]:
        print(f"  not a decision, listed as one: {x['file']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("set_dir", nargs="?", type=Path, default=DEFAULT_SET)
    parser.add_argument("--json", type=Path, help="write the result, failures listed one by one, to this file")
    parser.add_argument("--work", type=Path, help="work folder to keep (copied docs, git replay, index)")
    parser.add_argument("--reuse", action="store_true", help="with --work: score the index already there")
    parser.add_argument("--no-history", action="store_true", help="do not replay history.jsonl as git commits")
    args = parser.parse_args()
    if args.work:
        args.work.mkdir(parents=True, exist_ok=True)
    result = run(args.set_dir, args.work, history=not args.no_history, reuse=args.reuse)
    print_table(result)
    result["passed"] = passed(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"\nwritten: {args.json}")


if __name__ == "__main__":
    main()
