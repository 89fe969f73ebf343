"""Build labelled retrieval-evaluation sets from FAQ documentation that Debian packages ship.

Made the way the shared reference set (../shared/eval/debian_faq) was made: in each FAQ page the
question headings, and every table of contents that repeats the questions, are cut out of the HTML,
so only the answers remain; the questions become the queries; the gold answer of a question is the
plain text of its section. Other pages of the same documentation stand beside the FAQ as
distractors. A BEIR-format passage copy splits every page by headings into 200-word windows
(stride 150); a passage is relevant to a question when at least half of its 8-word shingles (or of
the gold answer's, if that is shorter) occur in the gold answer, the rule of e2e_score.py's is_hit.

    .venv/bin/python evalsets/build_sets.py [SET ...]      (default: every set in SETS)

Needs the Debian packages named in SETS (apt-get install python3.11-doc git-doc python-django-doc
python-sqlalchemy-doc r-doc-html). Only the cut is done on the HTML: the removed elements are sliced out of the
original bytes, and the builder checks that every other word of the page is still there, in order.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import lxml.html
from lxml import etree

HERE = Path(__file__).resolve().parent
HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
SKIP = {"script", "style", "head", "title", "noscript", "template"}
MIN_ANSWER_WORDS = 15
WINDOW, STRIDE = 200, 150
N = 8  # shingle size of the relevance rule
TOK = re.compile(r"\w+", re.UNICODE)


# --------------------------------------------------------------------------- set definitions

@dataclass
class Source:
    """One documentation tree: its FAQ pages (in reading order) and the distractor pages."""

    package: str
    root: str                 # installed HTML folder
    dest: str                 # folder under docs/ the pages are copied to ('' = docs/ itself)
    faq: list[str]            # FAQ pages, relative to root, in reading order
    distractors: list[str]    # globs or names relative to root
    kind: str = "sphinx"      # 'sphinx' (questions are section headings), 'asciidoc-dlist' or 'texinfo'
    exclude: list[str] = field(default_factory=list)
    license: str = ""


@dataclass
class SetSpec:
    name: str
    sources: list[Source]
    about: str
    # passage copy: first XPath that matches is the page's content root; these are cut from it
    content_roots: tuple[str, ...] = ('//*[@role="main"]', '//div[@id="yui-main"]', "//body")
    content_drop: tuple[str, ...] = ('.//div[@id="footer"]', './/div[@id="footnotes"]')


PY = "/usr/share/doc/python3.11/html"
DJ = "/usr/share/doc/python-django-doc/html"
SA = "/usr/share/doc/python-sqlalchemy-doc/html"
GIT = "/usr/share/doc/git-doc"
RDOC = "/usr/share/R/doc/manual"

SETS = [
    SetSpec(
        name="python_faq",
        about="Python 3.11 FAQ (9 pages) with the Python tutorial and HOWTOs as distractors",
        sources=[Source(
            package="python3.11-doc", root=PY, dest="",
            faq=["faq/index.html", "faq/general.html", "faq/programming.html", "faq/design.html",
                 "faq/library.html", "faq/extending.html", "faq/windows.html", "faq/gui.html",
                 "faq/installed.html"],
            distractors=["tutorial/*.html", "howto/*.html"],
            # the two largest HOWTOs (logging cookbook 480 KB, Argument Clinic, a CPython-internals
            # tool) are left out to keep the set small
            exclude=["howto/logging-cookbook.html", "howto/clinic.html"],
            license="PSF License Agreement (Python documentation)",
        )],
    ),
    SetSpec(
        name="django_sqlalchemy_faq",
        about="Django 3.2 FAQ and SQLAlchemy 1.4 FAQ, with Django and SQLAlchemy topic guides as distractors",
        sources=[
            Source(
                package="python-django-doc", root=DJ, dest="django",
                faq=["faq/index.html", "faq/general.html", "faq/install.html", "faq/usage.html",
                     "faq/help.html", "faq/models.html", "faq/admin.html", "faq/contributing.html",
                     "faq/troubleshooting.html"],
                distractors=[
                    "intro/install.html", "intro/overview.html", "intro/tutorial01.html",
                    "intro/tutorial02.html", "intro/tutorial07.html", "intro/whatsnext.html",
                    "intro/contributing.html", "topics/install.html", "topics/settings.html",
                    "topics/files.html", "topics/templates.html", "topics/db/models.html",
                    "topics/db/queries.html", "topics/db/sql.html", "topics/db/optimization.html",
                    "howto/static-files/index.html", "howto/static-files/deployment.html",
                    "howto/legacy-databases.html", "howto/windows.html",
                    "internals/contributing/bugs-and-features.html",
                    "internals/contributing/triaging-tickets.html", "internals/security.html",
                    "misc/design-philosophies.html", "misc/api-stability.html",
                ],
                license="BSD-3-Clause (Django documentation)",
            ),
            Source(
                package="python-sqlalchemy-doc", root=SA, dest="sqlalchemy",
                faq=["faq/index.html", "faq/installation.html", "faq/connections.html",
                     "faq/metadata_schema.html", "faq/sqlexpressions.html", "faq/ormconfiguration.html",
                     "faq/performance.html", "faq/sessions.html", "faq/thirdparty.html"],
                distractors=[
                    "intro.html", "core/engines.html", "core/pooling.html", "core/ddl.html",
                    "orm/session_basics.html", "orm/session_state_management.html",
                    "orm/session_transaction.html", "orm/cascades.html", "orm/quickstart.html",
                    "orm/versioning.html", "tutorial/engine.html", "tutorial/dbapi_transactions.html",
                    "tutorial/metadata.html", "tutorial/orm_data_manipulation.html",
                ],
                license="MIT (SQLAlchemy documentation)",
            ),
        ],
    ),
    SetSpec(
        name="git_faq",
        about="gitfaq(7) with the Git user manual, tutorials and man pages as distractors",
        sources=[Source(
            package="git-doc", root=GIT, dest="", kind="asciidoc-dlist",
            faq=["gitfaq.html"],
            distractors=[
                "user-manual.html", "gittutorial.html", "gittutorial-2.html", "giteveryday.html",
                "gitglossary.html", "gitcredentials.html", "gitignore.html", "gitattributes.html",
                "githooks.html", "gitworkflows.html", "git-config.html", "git-commit.html",
                "git-revert.html", "git-reset.html", "git-rebase.html", "git-merge.html",
                "git-pull.html", "git-fetch.html", "git-push.html", "git-rm.html",
                "git-update-index.html", "git-credential.html", "git-credential-store.html",
                "git-credential-cache.html", "git-var.html", "git-stash.html", "git-restore.html",
                "git-clone.html", "git-ls-files.html", "git-check-ignore.html",
            ],
            license="GPL-2 (Git documentation)",
        )],
    ),
    SetSpec(
        name="r_faq",
        about="R FAQ (texi2any single-page HTML) with four other R manuals as distractors",
        sources=[Source(
            package="r-doc-html", root=RDOC, dest="", kind="texinfo",
            faq=["R-FAQ.html"],
            distractors=["R-intro.html", "R-data.html", "R-admin.html", "R-lang.html"],
            license="GPL-2+ (R manuals; /usr/share/doc/r-doc-html/copyright)",
        )],
    ),
]


# --------------------------------------------------------------------------- text helpers

def norm(s: str) -> str:
    return " ".join(s.split())


def is_headerlink(el) -> bool:
    return el.tag == "a" and "headerlink" in (el.get("class") or "").split()


def text_of(el, skip=frozenset()) -> str:
    """Text nodes joined by spaces, whitespace-normalized: the extraction style of the reference set.
    Elements in `skip`, permalink glyphs (a.headerlink) and script/style are left out."""
    out: list[str] = []

    def walk(e):
        if not isinstance(e.tag, str) or e in skip or e.tag in SKIP or is_headerlink(e):
            return
        if e.text:
            out.append(e.text)
        for ch in e:
            walk(ch)
            if ch.tail:
                out.append(ch.tail)

    walk(el)
    return norm(" ".join(out))


def heading_text(h) -> str:
    """A heading as a reader sees it (no space inserted at inline-element boundaries), without ¶."""
    parts = []

    def walk(e):
        if not isinstance(e.tag, str) or is_headerlink(e):
            return
        if e.text:
            parts.append(e.text)
        for ch in e:
            walk(ch)
            if ch.tail:
                parts.append(ch.tail)
    walk(h)
    return norm("".join(parts))


def words_of_body(root, skip=frozenset()) -> list[str]:
    body = root.find(".//body")
    return text_of(body if body is not None else root, skip).split()


# --------------------------------------------------------------------------- passage copy

def heading_anchor(h) -> str:
    if h.get("id"):
        return h.get("id")
    for e in h.iter():
        if e is not h and isinstance(e.tag, str) and e.get("id"):
            return e.get("id")
    for a in h.iter("a"):
        if is_headerlink(a) and (a.get("href") or "").startswith("#") and len(a.get("href")) > 1:
            return a.get("href")[1:]
    p = h.getparent()
    if p is not None and p.get("id") and (p.tag == "section" or "section" in (p.get("class") or "")):
        return p.get("id")
    return ""


def sections(container, drop=frozenset()):
    """Split a content element at every heading: [(title, anchor, words)], empty ones dropped."""
    secs = []
    cur = {"title": "", "anchor": "", "words": []}

    def walk(el):
        nonlocal cur
        if not isinstance(el.tag, str) or el.tag in SKIP or el in drop or is_headerlink(el):
            return
        if el.tag in HEADINGS:
            secs.append(cur)
            cur = {"title": text_of(el), "anchor": heading_anchor(el), "words": []}
            return
        if el.text:
            cur["words"].extend(el.text.split())
        for ch in el:
            walk(ch)
            if ch.tail:
                cur["words"].extend(ch.tail.split())

    walk(container)
    secs.append(cur)
    return [s for s in secs if s["words"]]


def passages(source: str, root, spec: SetSpec | None = None):
    if spec is None:
        container, drop = root.find(".//body"), set()
    else:
        container = next(m[0] for xp in spec.content_roots if (m := root.xpath(xp)))
        drop = {e for xp in spec.content_drop for e in container.xpath(xp)}
    out = []
    for i, s in enumerate(sections(container, drop)):
        w, st = s["words"], 0
        while True:
            out.append({"_id": f"{source}#{i}.{st}", "title": s["title"], "text": " ".join(w[st:st + WINDOW]),
                        "source": source, "anchor": s["anchor"]})
            if st + WINDOW >= len(w):
                break
            st += STRIDE
    return out


# --------------------------------------------------------------------------- relevance (e2e_score.py)

def shingles(words):
    if len(words) < N:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i:i + N]) for i in range(len(words) - N + 1)}


def is_hit(text, gold_sh, gold_words):
    """Copied from ../shared/eval/e2e_score.py so the qrels follow the scorer's rule exactly."""
    w = TOK.findall(text.lower())
    sh = [" ".join(w[i:i + N]) for i in range(max(1, len(w) - N + 1))] if len(w) >= N else [" ".join(w)]
    if not w:
        return False
    inside = sum(1 for s in sh if s in gold_sh)
    return inside / min(len(sh), max(1, len(gold_words) - N + 1)) >= 0.5


# --------------------------------------------------------------------------- byte-exact cutting

_MASK = re.compile(rb"<!--.*?-->|<script\b.*?</script\s*>|<style\b.*?</style\s*>|<!\[CDATA\[.*?\]\]>",
                   re.S | re.I)


def masked(raw: bytes) -> bytes:
    """Comments, scripts and styles blanked (same length) so tag scanning cannot trip on them."""
    return _MASK.sub(lambda m: b" " * len(m.group(0)), raw)


def element_span(raw_m: bytes, root, el) -> tuple[int, int]:
    """Byte span of `el` in the page: its start tag is the k-th `<tag` of the masked source, k being
    its place among the parsed elements of that tag; the end is found by counting nesting."""
    tag = el.tag
    same = [e for e in root.iter(tag)]
    starts = [m.start() for m in re.finditer(rb"<" + tag.encode() + rb"(?=[\s>/])", raw_m, re.I)]
    if len(starts) != len(same):
        raise RuntimeError(f"<{tag}>: {len(same)} parsed, {len(starts)} in source; cannot cut safely")
    s = starts[same.index(el)]
    tok = re.compile(rb"<(/?)" + tag.encode() + rb"(?=[\s>/])[^>]*>", re.I)
    depth, pos = 0, s
    for m in tok.finditer(raw_m, s):
        depth += -1 if m.group(1) else 1
        if depth == 0:
            pos = m.end()
            break
    else:
        raise RuntimeError(f"no end tag for <{tag}> at byte {s}")
    # sanity: the start tag carries the element's id/class
    start_tag = raw_m[s:raw_m.index(b">", s) + 1].decode("utf-8", "replace")
    for attr in ("id", "class"):
        if el.get(attr) and el.get(attr) not in start_tag:
            raise RuntimeError(f"cut mismatch at byte {s}: {start_tag!r} lacks {attr}={el.get(attr)!r}")
    return s, pos


def cut(raw: bytes, root, elements) -> bytes:
    raw_m = masked(raw)
    spans = sorted(element_span(raw_m, root, e) for e in elements)
    out, last = [], 0
    for s, e in spans:
        if s < last:  # nested inside a span already cut
            continue
        out.append(raw[last:s])
        last = e
    out.append(raw[last:])
    return b"".join(out)


def parse(raw: bytes):
    return lxml.html.document_fromstring(raw, parser=lxml.html.HTMLParser(encoding="utf-8"))


# --------------------------------------------------------------------------- finding the questions

@dataclass
class Question:
    page: str          # path under docs/
    text: str          # the question as a reader sees it
    anchor: str        # deep-link target that stays in the page
    remove: object     # the element cut out (heading or <dt>)
    locate: object     # callable(modified_root) -> (answer element, elements to leave out of its text)


def sphinx_sections(root):
    """(section element, heading element) for every Sphinx section in the page body."""
    out = []
    for sec in root.xpath('//section | //div[contains(concat(" ", normalize-space(@class), " "), " section ")]'):
        # the heading is the first child, after any empty label <span id>s
        for c in sec:
            if not isinstance(c.tag, str):
                continue
            if c.tag in HEADINGS:
                out.append((sec, c))
            if c.tag in HEADINGS or c.tag not in ("span", "a") or norm(c.text_content()):
                break
    return out


def sphinx_questions(page: str, root) -> list[Question]:
    """Every FAQ entry below the page title. An entry is a section whose heading asks something ('?')
    or a leaf section not inside such a question (a problem statement such as 'MySQL Server has gone
    away'). Subsections of a question are part of its answer; a heading without '?' that has
    subsections is a category ('Core Language') and stays."""
    secs = sphinx_sections(root)
    if not secs:
        return []
    sec_ids = {id(s) for s, _ in secs}
    qs: list[tuple] = []
    chosen: set[int] = set()
    for sec, h in secs[1:]:
        text = heading_text(h)
        leaf = not any(id(d) in sec_ids for d in sec.iterdescendants() if d is not sec)
        inside_q = any(id(a) in chosen for a in sec.iterancestors())
        if "?" in text or (leaf and not inside_q):
            chosen.add(id(sec))
            qs.append((sec, h, text))
    # a leaf without '?' whose section holds almost no text is an empty category ('General GUI
    # Questions'), not a question: its heading stays
    qs = [(sec, h, t) for sec, h, t in qs
          if "?" in t or len(text_of(sec, skip={h} | set(h.iterdescendants())).split()) >= MIN_ANSWER_WORDS]
    out = []
    for sec, h, text in qs:
        link = next((a.get("href")[1:] for a in h.iter("a") if is_headerlink(a) and (a.get("href") or "#").strip("#")), "")
        anchor = link or sec.get("id")
        sec_id = sec.get("id")
        nested = [d.get("id") for d, _h, _t in qs if d is not sec and sec in d.iterancestors()]

        def locate(mroot, sec_id=sec_id, nested=tuple(nested)):
            el = mroot.xpath(f'//*[@id="{sec_id}"]')[0]
            return el, {e for n in nested for e in mroot.xpath(f'//*[@id="{n}"]')}

        out.append(Question(page, text, anchor, h, locate))
    return out


def asciidoc_dlist_questions(page: str, root, txt_path: Path) -> list[Question]:
    """gitfaq: each question is a <dt class="hdlist1"> of a labelled list, its answer the <dd> after it.
    The deep-link ids are the [[anchors]] of the AsciiDoc source; AsciiDoc places each on the list (for
    a list's first item) or inside the answer. Where it landed elsewhere, the section heading's id is used."""
    anchors = re.findall(r"^\[\[([^\]]+)\]\]\s*\n[^\n]*::\s*$", txt_path.read_text(), re.M)
    dts = root.xpath('//div[@id="content"]//div[contains(@class,"dlist")]/dl/dt[contains(@class,"hdlist1")]')
    if len(anchors) != len(dts):
        raise RuntimeError(f"{page}: {len(dts)} questions in HTML, {len(anchors)} anchors in {txt_path}")
    all_dd = list(root.iter("dd"))
    out = []
    for dt, anchor in zip(dts, anchors):
        dd = dt.getnext()
        assert dd is not None and dd.tag == "dd", "a question without an answer"
        target = root.xpath(f'//*[@id="{anchor}"]')
        dl = dt.getparent()
        first_of_list = next(c for c in dl if c.tag == "dt") is dt
        ok = bool(target) and (target[0] is dd or dd in target[0].iterancestors()
                               or (first_of_list and target[0] is dl.getparent()))
        if not ok:
            sect = dt.xpath('ancestor::div[contains(@class,"sect1")][1]/h2')
            anchor = sect[0].get("id") if sect else ""
        k = all_dd.index(dd)
        out.append(Question(page, heading_text(dt), anchor, dt,
                            lambda mroot, k=k: (list(mroot.iter("dd"))[k], set())))
    return out


TEXI_SECTION = ("chapter", "section", "subsection", "subsubsection", "appendix", "appendixsec",
                "appendixsubsec", "unnumbered", "unnumberedsec", "unnumberedsubsec")
TEXI_NUMBER = re.compile(r"^(?:[0-9]+|[A-Z])(?:\.[0-9]+)*\s+")


def texinfo_questions(page: str, root) -> list[Question]:
    """texi2any HTML: every node is a <div class="section|subsection|..." id=NODE> holding a navigation
    <div class="header"> and then its heading ("2.1 What is R?"). A question is a heading with '?';
    the query is its text without the section number, the answer the node's text without the nested
    question nodes, the deep link the node's id."""
    nodes = []
    for div in root.iter("div"):
        if (div.get("class") or "") in TEXI_SECTION and div.get("id"):
            h = next((c for c in div if isinstance(c.tag, str) and c.tag in HEADINGS), None)
            if h is not None and "?" in heading_text(h):
                nodes.append((div, h))
    out = []
    for div, h in nodes:
        text = TEXI_NUMBER.sub("", heading_text(h))
        node_id = div.get("id")
        nested = [d.get("id") for d, _ in nodes if d is not div and div in d.iterancestors()]

        def locate(mroot, sec_id=node_id, nested=tuple(nested)):
            el = mroot.xpath(f'//*[@id="{sec_id}"]')[0]
            return el, {e for n in nested for e in mroot.xpath(f'//*[@id="{n}"]')}

        out.append(Question(page, text, node_id, h, locate))
    return out


def texinfo_repeats(root, questions: list[Question]) -> list:
    """What repeats the questions in a texi2any page: every navigation bar (<div class="header">:
    "Next: What machines does R run on?, Previous: …") and every table-of-contents or menu entry
    (<li>) that links to a question's node with the question's text, numbered or not."""
    asked = {q.anchor: q.text for q in questions}
    remove = list(root.xpath('//div[@class="header"]'))
    for li in root.iter("li"):
        a = next((x for x in li.iter("a") if (x.get("href") or "").startswith("#")), None)
        if a is None:
            continue
        label = TEXI_NUMBER.sub("", norm("".join(_label_texts(li))))
        if asked.get(a.get("href")[1:]) == label:
            remove.append(li)
    rm = set(remove)
    return [e for e in remove if not any(x in rm for x in e.iterancestors())]


def toc_items(root, qlinks: dict[str, str], page_dir: str) -> list:
    """Table-of-contents entries that repeat a question: an <li> whose own label is the question's
    text and whose link points at the question's page and anchor. A docutils 'Contents' box that
    holds one goes whole; a list left with no entries goes whole."""
    hits = []
    for li in root.iter("li"):
        a = next((x for x in li.iter("a") if x.get("href") and "#" in x.get("href")), None)
        if a is None:
            continue
        label = norm("".join(t for t in _label_texts(li)))
        href = a.get("href")
        path, frag = href.split("#", 1)
        target = os.path.normpath(os.path.join(page_dir, path)) if path else None
        key = f"{target}#{frag}" if target else f"#{frag}"
        if (key in qlinks or f"*#{frag}" in qlinks) and label == qlinks.get(key, qlinks.get(f"*#{frag}")):
            hits.append(li)
    remove = set(hits)
    # whole boxes / emptied lists
    for li in hits:
        box = li.xpath('ancestor::*[self::nav or self::div][contains(concat(" ", normalize-space(@class), " "), " contents ")][1]')
        if box:
            remove.add(box[0])
    changed = True
    while changed:
        changed = False
        for lst in root.xpath("//ul | //ol"):
            items = [c for c in lst if c.tag == "li"]
            if items and lst not in remove and all(c in remove for c in items):
                remove.add(lst)
                changed = True
    # keep only outermost
    return [e for e in remove if not any(a in remove for a in e.iterancestors())]


def _label_texts(li):
    def walk(e):
        if not isinstance(e.tag, str) or is_headerlink(e) or (e is not li and e.tag in ("ul", "ol")):
            return
        if e.text:
            yield e.text
        for ch in e:
            yield from walk(ch)
            if ch.tail:
                yield ch.tail
    yield from walk(li)


# --------------------------------------------------------------------------- building a set

def pkg_version(pkg: str) -> str:
    try:
        return subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        return ""


def expand(src: Source) -> list[str]:
    names: list[str] = []
    for pat in src.distractors:
        found = sorted(os.path.relpath(p, src.root) for p in glob.glob(os.path.join(src.root, pat)))
        if not found:
            raise SystemExit(f"{src.package}: no page matches {pat} under {src.root}")
        names += [f for f in found if f not in src.exclude and f not in src.faq and f not in names]
    return names


def build(spec: SetSpec, out_root: Path) -> dict:
    for src in spec.sources:
        if not pkg_version(src.package) or not Path(src.root).is_dir():
            raise SystemExit(f"{spec.name}: Debian package {src.package} is not installed "
                             f"(apt-get install {src.package})")
    out = out_root / spec.name
    if out.exists():
        shutil.rmtree(out)
    (out / "docs").mkdir(parents=True)

    pages: dict[str, dict] = {}   # docs-relative path -> {raw, root, src, role}
    for src in spec.sources:
        for rel, role in [(f, "faq") for f in src.faq] + [(f, "distractor") for f in expand(src)]:
            raw = (Path(src.root) / rel).read_bytes()
            pages[os.path.join(src.dest, rel)] = {"raw": raw, "root": parse(raw), "src": src, "role": role}

    # 1. the questions of every FAQ page
    questions: list[Question] = []
    for path, p in pages.items():
        if p["role"] != "faq":
            continue
        if p["src"].kind == "sphinx":
            if path.endswith("index.html"):
                continue
            questions += sphinx_questions(path, p["root"])
        elif p["src"].kind == "texinfo":
            questions += texinfo_questions(path, p["root"])
        else:
            txt = Path(p["src"].root) / (Path(path).stem + ".txt")
            questions += asciidoc_dlist_questions(path, p["root"], txt)

    # question links, for spotting tables of contents: "docs/path#anchor" -> question text
    qlinks: dict[str, str] = {}
    for q in questions:
        qlinks[f"{q.page}#{q.anchor}"] = q.text
        sec = q.remove.getparent()
        if sec is not None and sec.get("id") and sec.get("id") != q.anchor:  # Django: div#s-X + span#X
            qlinks[f"{q.page}#{sec.get('id')}"] = q.text

    # 2. cut and write every page
    stats = {"toc_entries_removed": 0, "pages_changed": 0}
    for path, p in pages.items():
        page_q = [q for q in questions if q.page == path]
        local = {k.split("#", 1)[1]: v for k, v in qlinks.items() if k.startswith(path + "#")}
        links = dict(qlinks)
        links.update({f"*#{k}": v for k, v in local.items()})
        if p["src"].kind == "texinfo":
            tocs = texinfo_repeats(p["root"], page_q) if page_q else []
        else:
            tocs = toc_items(p["root"], links, os.path.dirname(path))
        remove = [q.remove for q in page_q] + tocs
        stats["toc_entries_removed"] += len(tocs)
        if remove:
            new = cut(p["raw"], p["root"], remove)
            stats["pages_changed"] += 1
        else:
            new = p["raw"]
        mroot = parse(new)
        # every word outside the cut elements is still there, in order
        want = words_of_body(p["root"], skip=set(remove) | {d for e in remove for d in e.iterdescendants()})
        got = words_of_body(mroot)
        if want != got:
            raise RuntimeError(f"{spec.name}/{path}: cutting changed other text")
        p["mroot"] = mroot
        dest = out / "docs" / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(new)

    # 3. queries and gold answers
    queries, gold, seen = [], [], set()
    dropped = {"short": [], "duplicate": []}
    for q in questions:
        el, skip = q.locate(pages[q.page]["mroot"])
        answer = text_of(el, skip=skip | {d for s in skip for d in s.iterdescendants()})
        if len(answer.split()) < MIN_ANSWER_WORDS:
            dropped["short"].append(q.text)
            continue
        if q.text.lower() in seen:
            dropped["duplicate"].append(q.text)
            continue
        seen.add(q.text.lower())
        qid = f"q{len(queries) + 1}"
        queries.append({"_id": qid, "text": q.text})
        gold.append({"query_id": qid, "answer": answer, "source": q.page, "file": q.page, "anchor": q.anchor})

    # 4. passage copy and qrels
    corpus = []
    for path in sorted(pages):
        corpus += passages(path, pages[path]["mroot"], spec)
    qrels = []
    for g in gold:
        gw = TOK.findall(g["answer"].lower())
        gs = shingles(gw)
        qrels += [(g["query_id"], c["_id"]) for c in corpus if is_hit(c["text"], gs, gw)]
    no_rel = sorted({g["query_id"] for g in gold} - {q for q, _ in qrels}, key=lambda s: int(s[1:]))

    def dump(name, rows):
        with open(out / name, "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")

    dump("queries.jsonl", queries)
    dump("gold.jsonl", gold)
    dump("corpus.jsonl", corpus)
    with open(out / "qrels.tsv", "w", encoding="utf-8") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        f.writelines(f"{q}\t{c}\t1\n" for q, c in qrels)

    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    docs_size = sum(f.stat().st_size for f in (out / "docs").rglob("*") if f.is_file())
    meta = {
        "name": spec.name,
        "about": spec.about,
        "packages": {s.package: pkg_version(s.package) for s in spec.sources},
        "licenses": {s.package: s.license for s in spec.sources},
        "docs": len(pages),
        "faq_pages": sum(p["role"] == "faq" for p in pages.values()),
        "distractor_pages": sum(p["role"] == "distractor" for p in pages.values()),
        "questions_found": len(questions),
        "queries": len(queries),
        "dropped_short": dropped["short"],
        "dropped_duplicate": dropped["duplicate"],
        "passages": len(corpus),
        "qrels": len(qrels),
        "queries_without_relevant_passage": no_rel,
        "toc_entries_removed": stats["toc_entries_removed"],
        "docs_bytes": docs_size,
        "set_bytes": size,
    }
    with open(out / "meta.json", "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1, ensure_ascii=False)
        f.write("\n")
    return meta


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sets", nargs="*", help="names of sets to build (default: all)")
    ap.add_argument("--out", type=Path, default=HERE)
    args = ap.parse_args(argv)
    names = args.sets or [s.name for s in SETS]
    unknown = set(names) - {s.name for s in SETS}
    if unknown:
        ap.error(f"unknown set(s): {', '.join(sorted(unknown))}")
    for spec in SETS:
        if spec.name in names:
            m = build(spec, args.out)
            print(f"{m['name']}: {m['docs']} pages ({m['faq_pages']} FAQ), {m['queries']} queries "
                  f"({len(m['dropped_short'])} short, {len(m['dropped_duplicate'])} duplicate dropped), "
                  f"{m['passages']} passages, {m['qrels']} qrels, {len(m['queries_without_relevant_passage'])} "
                  f"queries without a relevant passage, {m['set_bytes'] / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
