"""reStructuredText and AsciiDoc, each built at test time from real text (chapters of the Debian FAQ,
tests/ingest/data/debian-faq/) the way Sphinx projects and Asciidoctor documents write it, plus the
markup either format's real documents carry (Sphinx directives and roles, AsciiDoc headers,
anchors, tables, comments) and broken files that must fail with a ParseError and nothing else."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from ingest.parsers import PARSERS, parse_file
from ingest.parsers.asciidoc import generate_id
from km_search.errors import ParseError

EMPTY = "empty file: no text to index"
RST_UNDERLINES = "=-~^\"'"


def write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def rst_escape(line: str) -> str:
    """Real prose as rST prose: markup characters escaped, so the text reads back as written."""
    for ch in "\\*`|_[":
        line = line.replace(ch, "\\" + ch)
    if line[:1] in "-+#.:=" or line[:2].rstrip(".").isdigit():
        line = "\\" + line  # not a list item, a field or a section adornment
    return line


def rst_of(doc, fields: str = "") -> str:
    """The chapter as rST: its title over- and underlined (docutils promotes it to the document
    title), each deeper heading underlined by level, a paragraph per line."""
    out: list[str] = []
    path: tuple[str, ...] = ()
    for section in doc.sections:
        if section.heading_path != path:
            for level, heading in enumerate(section.heading_path):
                if section.heading_path[: level + 1] != path[: level + 1]:
                    rule = ("=" if level == 0 else RST_UNDERLINES[level]) * (len(heading) + 2)
                    out.append(f"{rule}\n{heading}\n{rule}\n" if level == 0 else f"{heading}\n{rule}\n")
                    if level == 0 and fields:
                        out.append(fields)
            path = section.heading_path
        out.extend(f"{rst_escape(line)}\n" for line in section.text.split("\n"))
    return "\n".join(out)


def adoc_escape(line: str) -> str:
    """Real prose as AsciiDoc prose: a line that would open a list, a comment or a block starts with {empty}."""
    if line[:1] in "*-." or line[:2].rstrip(".").isdigit() or line.startswith("//") or line.endswith("::"):
        line = "{empty}" + line
    return line


def adoc_of(doc, header: str = "", anchors: dict[str, str] | None = None) -> str:
    """The chapter as AsciiDoc: `= Title` and a header, `==` and deeper for the sections."""
    anchors = anchors or {}
    out: list[str] = []
    path: tuple[str, ...] = ()
    for section in doc.sections:
        if section.heading_path != path:
            for level, heading in enumerate(section.heading_path):
                if section.heading_path[: level + 1] != path[: level + 1]:
                    if level == 0:
                        out.append(f"= {heading}\n{header}")
                    else:
                        anchor = f"[[{anchors[heading]}]]\n" if heading in anchors else ""
                        out.append(f"{anchor}{'=' * (level + 1)} {heading}\n")
            path = section.heading_path
        out.extend(f"{adoc_escape(line)}\n" for line in section.text.split("\n"))
    return "\n".join(out)


def section(doc, heading_start: str):
    return next(s for s in doc.sections if s.heading_path and s.heading_path[-1].startswith(heading_start))


def test_registry():
    assert {".rst", ".rest", ".adoc", ".asciidoc"} <= set(PARSERS)
    assert ".asc" not in PARSERS  # armored PGP signatures, not AsciiDoc


# --- reStructuredText -------------------------------------------------------------------------

RST_FIELDS = """:Author: Susan G. Kleinmann; Sven Rudolph
:Date: 2021-09-12
:Status: published
:Tags: debian, kernel
:Version: 11.1
:Audience: system administrators

"""


def test_rst_sections_anchors_and_docinfo(tmp_path, real):
    chapter = real.chapter("kernel")
    doc = parse_file(write(tmp_path / "kernel.rst", rst_of(chapter, RST_FIELDS)), "faq/kernel.rst")
    assert doc.format == "rst"
    assert doc.meta.title == "Chapter 10. Debian and the kernel"
    assert doc.meta.authors == ("Susan G. Kleinmann", "Sven Rudolph")
    assert doc.meta.created == "2021-09-12"
    assert doc.meta.status == "published"
    assert doc.meta.tags == ("debian", "kernel")
    assert doc.meta.extra == {"version": "11.1", "audience": "system administrators"}
    old = section(doc, "10.4.")
    # docutils' own id (nodes.make_id: leading section number dropped), the one Sphinx links to
    assert old.anchor == "can-i-safely-de-install-an-old-kernel-package-and-if-so-how"
    assert old.heading_path == ("Chapter 10. Debian and the kernel",
                                "10.4. Can I safely de-install an old kernel package, and if so, how?")
    assert old.text == section(chapter, "10.4.").text  # the real text comes back as written
    assert [s.heading_path[-1] for s in doc.sections] == [s.heading_path[-1] for s in chapter.sections]
    assert "Author" not in "\n".join(s.text for s in doc.sections)  # metadata is not passage text


def test_rst_nested_sections_and_repeated_titles(tmp_path, real):
    doc = parse_file(write(tmp_path / "support.rst", rst_of(real.chapter("support"))), "support.rst")
    conduct = section(doc, "12.2.1.1.")
    assert conduct.heading_path[1:] == ("12.2. Are there any on-line resources for discussing Debian?",
                                        "12.2.1. Mailing lists", "12.2.1.1. What is the code of conduct for the mailing lists?")
    assert conduct.anchor == "what-is-the-code-of-conduct-for-the-mailing-lists"
    assert "Do not send spam" in conduct.text
    source = """Usage\n=====\n\nFirst.\n\nUsage\n=====\n\nSecond.\n"""
    twice = parse_file(write(tmp_path / "twice.rst", source), "twice.rst")
    assert [(s.anchor, s.text) for s in twice.sections] == [("usage", "First."), ("usage-1", "Second.")]
    assert twice.meta.title == "Usage"  # no lone top title: the first heading, as for Markdown


SPHINX = """.. _kernel-faq:

Debian and the kernel
=====================

:Author: Debian Documentation Project
:Keywords: kernel, modules

.. toctree::
   :maxdepth: 2
   :caption: Contents

   kernel/build
   kernel/modules

.. contents:: On this page
   :local:

Users who wish to build a custom kernel are encouraged to use the :ref:`Debian packaging
<customkernel>` tools, described in :doc:`/pkgtools`; see :manpage:`make-kpkg(1)` and the
:class:`~debian.kernel.KernelPackage` class.

.. _customkernel:

What tools does Debian provide to build custom kernels?
--------------------------------------------------------

.. versionadded:: 10
   The *linux-source* package replaced ``kernel-source``.

.. note::

   The Debian Linux Kernel Handbook has further information.

.. code-block:: console
   :caption: building a kernel package
   :emphasize-lines: 2

   $ cd /usr/src/linux
   $ make deb-pkg

.. glossary::

   initrd
      A configuration file containing modules to be manually loaded at boot time.

.. py:function:: build_kernel(version, flavour="amd64")
   :no-index:

   Builds the Debian kernel package.

.. literalinclude:: ../../etc/passwd

.. include:: /etc/passwd

.. raw:: html
   :file: /etc/passwd

.. csv-table:: Kernels
   :file: /etc/passwd

.. list-table:: Packages
   :header-rows: 1

   * - Package
     - Purpose
   * - linux-image-amd64
     - the kernel for 64-bit PCs

.. only:: html

   Kernel packages are named linux-image-NNN.

.. |today| replace:: 2024-03-01

Last checked |today|.

.. todo:: document the zstd modules
"""


def test_rst_sphinx_markup_keeps_its_text_and_never_reads_other_files(tmp_path, capsys):
    doc = parse_file(write(tmp_path / "kernel.rst", SPHINX), "kernel.rst")
    text = "\n".join(s.text for s in doc.sections)
    intro, tools = doc.sections
    assert intro.heading_path == ("Debian and the kernel",) and intro.anchor == "debian-and-the-kernel"
    assert intro.text == ("Users who wish to build a custom kernel are encouraged to use the Debian packaging tools, "
                          "described in /pkgtools; see make-kpkg(1) and the KernelPackage class.")
    assert tools.anchor == "what-tools-does-debian-provide-to-build-custom-kernels"  # ids[0], before the label's
    for kept in ("10", "The linux-source package replaced kernel-source.",
                 "The Debian Linux Kernel Handbook has further information.", "$ cd /usr/src/linux\n$ make deb-pkg",
                 "initrd\nA configuration file containing modules", 'build_kernel(version, flavour="amd64")',
                 "Builds the Debian kernel package.", "Package | Purpose", "linux-image-amd64 | the kernel for 64-bit PCs",
                 "Kernel packages are named linux-image-NNN.", "Last checked 2024-03-01.", "document the zstd modules"):
        assert kept in text, kept
    for gone in ("root:", "toctree", "kernel/build", "maxdepth", "On this page", "Unknown", "emphasize", ":ref:", "no-index"):
        assert gone not in text, gone
    assert doc.meta.title == "Debian and the kernel"
    assert doc.meta.authors == ("Debian Documentation Project",)
    assert doc.meta.tags == ("kernel", "modules")
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""  # docutils said nothing


def test_rst_yaml_front_matter_and_short_overlined_title(tmp_path):
    front = "---\ntitle: Kernel notes\nauthor: Ann Example\ndate: 2024-03-01\nstatus: draft\nteam: kernel\n---\n"
    doc = parse_file(write(tmp_path / "a.rst", front + "Intro\n=====\n\nThe kernel is Linux.\n"), "a.rst")
    assert (doc.meta.title, doc.meta.authors, doc.meta.created, doc.meta.status) == ("Kernel notes", ("Ann Example",), "2024-03-01", "draft")
    assert doc.meta.extra == {"team": "kernel"}
    assert [s.text for s in doc.sections] == ["The kernel is Linux."]
    doc = parse_file(write(tmp_path / "b.rst", "---\nFAQ\n---\n\nShort titles take short adornments.\n"), "b.rst")
    assert doc.meta.title == "FAQ" and doc.sections[0].text == "Short titles take short adornments."


BROKEN_RST = [
    "Title\n===\n\n*unclosed emphasis and `unclosed literal\n\n+--+--+\n| a | b\n+--+\n",
    "A\n=\n\nB\n-\n\nC\n=\n\nD\n~\n\nE\n-\n\ntext\n",  # inconsistent title levels
    ".. image::\n\n.. figure:: x.png\n   :scale: lots\n\n.. math::\n\n   \\frac{\n\ntext\n",
    "Title\n=====\n\n" + "  " * 300 + "deep\n" + "".join("  " * i + "- x\n" for i in range(200)),
    ".. |x| replace:: |x|\n\n|x| recursion\n\n`a <b>`__ `a <b>`__ `c`_\n\n.. _c: <d>\n",
    "=====\n=====\n\n::\n\n----\n\n:field: body\n\n.. [#] note\n\n[#]_\n",
]


@pytest.mark.parametrize("source", BROKEN_RST)
def test_rst_broken_markup_reads_what_it_can_or_fails_with_a_reason(tmp_path, source):
    try:
        doc = parse_file(write(tmp_path / "broken.rst", source), "broken.rst")
    except ParseError:
        return
    assert all(s.text.strip() for s in doc.sections)


def test_rst_random_garbage_only_ever_raises_parse_error(tmp_path):
    rng = random.Random(7)
    pieces = ["Title", "=====", "-----", "\n", "\n\n", "  ", ".. ", "::", ":ref:`", "`", "*", "**", "|", "+--+",
              "_", "[#]_", ".. _x:", ".. note::", ".. toctree::", ":Author:", "#.", "- ", "1. ", "\\", "é", "\t"]
    for n in range(150):
        source = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 80)))
        try:
            parse_file(write(tmp_path / f"g{n}.rst", source), f"g{n}.rst")
        except ParseError:
            pass


@pytest.mark.parametrize("content, error", [
    (b"", EMPTY), (b"\n\n   \n", EMPTY), (".. a comment only\n\n.. toctree::\n\n   x\n", EMPTY),
    (bytes(range(256)) * 4, "binary file"),
])  # fmt: skip
def test_rst_empty_and_binary_files(tmp_path, content, error):
    with pytest.raises(ParseError, match=error):
        parse_file(write(tmp_path / "x.rst", content), "x.rst")


# --- AsciiDoc ---------------------------------------------------------------------------------

ADOC_HEADER = """Susan G. Kleinmann <faq@debian.org>; Sven Rudolph
v11.1, 2021-09-12: FAQ for bullseye
:state: published
:keywords: debian, packages
:discussion: https://lists.debian.org/debian-doc/
:toc: left
:icons: font
:release: bullseye
// the FAQ's own chapter ids are kept where other documents link to them
"""


def test_asciidoc_sections_generated_ids_and_header(tmp_path, real):
    chapter = real.chapter("kernel")
    source = adoc_of(chapter, ADOC_HEADER, anchors={section(chapter, "10.4.").heading_path[-1]: "removeoldkernel"})
    doc = parse_file(write(tmp_path / "kernel.adoc", source), "rfd/kernel.adoc")
    assert doc.format == "asciidoc"
    assert doc.meta.title == "Chapter 10. Debian and the kernel"
    assert doc.meta.authors == ("Susan G. Kleinmann <faq@debian.org>", "Sven Rudolph")
    assert doc.meta.modified == "2021-09-12"
    assert doc.meta.status == "published"
    assert doc.meta.tags == ("debian", "packages")
    assert doc.meta.extra == {"discussion": "https://lists.debian.org/debian-doc/", "release": "bullseye"}
    tools = section(doc, "10.2.")
    assert tools.anchor == "_10_2_what_tools_does_debian_provide_to_build_custom_kernels"  # Asciidoctor's id
    assert tools.heading_path == ("Chapter 10. Debian and the kernel", "10.2. What tools does Debian provide to build custom kernels?")
    assert tools.text == section(chapter, "10.2.").text
    assert section(doc, "10.4.").anchor == "removeoldkernel"
    assert [s.heading_path[-1] for s in doc.sections] == [s.heading_path[-1] for s in chapter.sections]


@pytest.mark.parametrize("title, expected", [
    # (title, id) pairs of the Debian Reference, whose HTML kept its AsciiDoc-generated ids
    ("Debian package management", "_debian_package_management"),
    ("Debian is 100% free software", "_debian_is_100_free_software"),
    ("Package dependencies", "_package_dependencies"),
    ("The event model of the udev system", "_the_event_model_of_the_udev_system"),
    ("Basic precautions", "_basic_precautions"),
    # Asciidoctor drops punctuation other than '-' and '.', which like spaces become the separator
    ("GNU/Linux tutorials", "_gnulinux_tutorials"),
    ("apt vs. apt-get / apt-cache vs. aptitude", "_apt_vs_apt_get_apt_cache_vs_aptitude"),
    ("Don't panic & <b>read</b> the FAQ!", "_dont_panic_read_the_faq"),
    ("Über die Paketverwaltung", "_über_die_paketverwaltung"),
])  # fmt: skip
def test_asciidoc_default_ids_follow_asciidoctor(title, expected):
    assert generate_id(title, {}, set()) == expected


def test_asciidoc_id_prefix_separator_and_repeats():
    taken = {"_usage"}
    assert generate_id("Usage", {}, taken) == "_usage_2"
    assert generate_id("Usage", {}, taken | {"_usage_2"}) == "_usage_3"
    assert generate_id("Debian archive basics", {"idprefix": "", "idseparator": "-"}, set()) == "debian-archive-basics"
    assert generate_id("Debian archive basics", {"idprefix": "sect-", "idseparator": ""}, set()) == "sect-debianarchivebasics"


RFD = """:showtitle:
:toc: left
:numbered:
:authors: Ann Example <ann@example.org>, Bob Builder <bob@example.org>
:state: discussion
:discussion: https://github.com/example/rfd/pull/42
:labels: packaging, debian

= RFD 42 Tracking testing with some packages from {suite}
:suite: unstable

////
Reviewers: leave comments in the pull request, not here. SECRET-REVIEW-NOTE
////

== Determination

// TODO(ann): link the decision record. SECRET-TODO
We will use APT pinning: *stable* by default, `unstable` only for the packages we name.
See <<_pinning_priorities,the priorities>> and https://wiki.debian.org/AptConfiguration[the Debian wiki].
Footnotes are kept.footnote:[Like this one.]

include::../shared/boilerplate.adoc[]

[#pinning-howto]
== How to pin

. Add the {suite} suite to `/etc/apt/sources.list`.
. Create `/etc/apt/preferences.d/pinning`:
+
[source,text]
----
Package: *
Pin: release a=stable
Pin-Priority: 700
----
. Run `apt update`.

=== Pinning priorities [[priorities]]

[cols="1,3", options="header"]
|===
|Priority |Meaning

|1000
|installs the version even if it downgrades a package

|500 |the default for a suite without a target release
2+|values in between move a package to the higher version
|===

[,csv]
,===
Suite,Codename
stable,bookworm
,===

.A literal block
....
APT::Default-Release "stable";
....

  An indented line is a literal paragraph.

WARNING: Do not mix suites on a production server.

ifdef::env-github[]
Rendered on GitHub.
endif::[]
ifndef::env-github[]
Rendered elsewhere.
endif::[]
ifdef::suite[Pinning {suite} is supported.]

[discrete]
== Alternatives

Debian backports:: newer packages built for stable.
Containers::
  A separate system per application.

* [x] Decide
* [ ] Announce
** on debian-devel
"""


def test_asciidoc_rfd_markup(tmp_path):
    doc = parse_file(write(tmp_path / "README.adoc", RFD), "rfd/0042/README.adoc")
    text = "\n".join(s.text for s in doc.sections)
    assert doc.meta.title == "RFD 42 Tracking testing with some packages from unstable"
    assert doc.meta.authors == ("Ann Example <ann@example.org>", "Bob Builder <bob@example.org>")
    assert doc.meta.status == "discussion"
    assert doc.meta.extra == {"discussion": "https://github.com/example/rfd/pull/42", "labels": "packaging, debian",
                              "suite": "unstable"}
    anchors = [(s.heading_path[-1], s.anchor) for s in doc.sections]
    assert anchors == [("Determination", "_determination"), ("How to pin", "pinning-howto"),
                       ("Pinning priorities", "priorities"), ("Alternatives", "_alternatives")]
    det, pin, prio, alt = doc.sections
    assert det.heading_path == ("RFD 42 Tracking testing with some packages from unstable", "Determination")
    assert det.text == ("We will use APT pinning: stable by default, unstable only for the packages we name. "
                        "See the priorities and the Debian wiki. Footnotes are kept. (Like this one.)")  # one paragraph
    assert pin.text == ("1. Add the unstable suite to /etc/apt/sources.list.\n"
                        "2. Create /etc/apt/preferences.d/pinning:\n"
                        "Package: *\nPin: release a=stable\nPin-Priority: 700\n3. Run apt update.")
    assert prio.heading_path[-2:] == ("How to pin", "Pinning priorities")
    for row in ("Priority | Meaning", "1000 | installs the version even if it downgrades a package",
                "500 | the default for a suite without a target release",
                "values in between move a package to the higher version", "Suite | Codename", "stable | bookworm",
                "A literal block", 'APT::Default-Release "stable";', "An indented line is a literal paragraph.",
                "WARNING: Do not mix suites on a production server.", "Rendered elsewhere.",
                "Pinning unstable is supported."):
        assert row in prio.text, row
    assert alt.text == ("Debian backports\nnewer packages built for stable.\nContainers\nA separate system per application.\n"
                        "- Decide\n- Announce\n- on debian-devel")
    for gone in ("SECRET", "include::", "boilerplate", "Rendered on GitHub", ":toc:", "[source", "|===", "ifdef", "{suite}"):
        assert gone not in text, gone


@pytest.mark.parametrize("source", [
    "= Title\n\n----\nunclosed listing\n",
    "|===\n|a|b\n|c\n",
    "////\nunclosed comment\n\nstill comment\n",
    "= Only a title\n:author: Nobody\n",
    "ifdef::x[]\nnever closed\n",
    ":a: {b}\n:b: {a}\n\n{a} {b} {c}\n",
    "== \n=== \n[[\n[[]]\n[#]\n|\n,===\n\"a,\"b\n,===\n",
    "\x0c\x0b" * 50 + "= T\n" + "*" * 5000 + "_" * 5000 + "`" * 5000 + "\n",
])  # fmt: skip
def test_asciidoc_broken_input_reads_what_it_can_or_fails_with_a_reason(tmp_path, source):
    try:
        doc = parse_file(write(tmp_path / "broken.adoc", source), "broken.adoc")
    except ParseError:
        return
    assert all(s.text.strip() for s in doc.sections)


def test_asciidoc_random_garbage_only_ever_raises_parse_error(tmp_path):
    rng = random.Random(11)
    pieces = ["= ", "== ", "====", "----", "....", "|===", ",===", "|", "2+|", "a|", "[[x]]", "[#y]", "[cols=\"3*\"]",
              ":a: b", ":a!:", "{a}", "//", "////", "include::x[]", "ifdef::a[]", "endif::[]", "* ", ". ", "::",
              "+", "<<x>>", "*b*", "_i_", "\n", "\n\n", " ", "é", "\\"]
    for n in range(200):
        source = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 80)))
        try:
            parse_file(write(tmp_path / f"g{n}.adoc", source), f"g{n}.adoc")
        except ParseError:
            pass


@pytest.mark.parametrize("content, error", [
    (b"", EMPTY), (b"  \n\n", EMPTY), ("// just a comment\n////\nand a block\n////\n:toc: left\n", EMPTY),
    ("= A title alone\n", EMPTY), (bytes(range(256)) * 4, "binary file"),
])  # fmt: skip
def test_asciidoc_empty_and_binary_files(tmp_path, content, error):
    with pytest.raises(ParseError, match=error):
        parse_file(write(tmp_path / "x.adoc", content), "x.adoc")


def test_rst_very_long_lines_are_kept(tmp_path, real):
    """docutils drops a whole document over one line longer than 10 000 characters; we re-wrap it."""
    answer = section(real.chapter("support"), "12.1.").text.replace("\n", " ")
    long_line = " ".join([answer] * 6)  # an unwrapped paragraph of ~16 000 characters
    assert len(long_line) > 10_000
    source = f"Documentation\n=============\n\nFirst.\n\n{rst_escape(long_line)}\n\nLast.\n"
    doc = parse_file(write(tmp_path / "long.rst", source), "long.rst")
    assert doc.sections[0].text == f"First.\n{long_line}\nLast."


@pytest.mark.parametrize("line", ["*a " * 30000, "_x " * 30000, "`a " * 30000, "#a " * 30000, "<<a, " * 20000,
                                  "https://" + "a" * 50000 + " https://" * 500, "== a" + " " * 50000 + "b"])
def test_asciidoc_hostile_lines_take_linear_time(tmp_path, line):
    import time

    start = time.monotonic()
    try:
        parse_file(write(tmp_path / "h.adoc", f"= T\n\n{line}\n\n|===\n|a{' ' * 50000}b|c\n|===\n"), "h.adoc")
    except ParseError:
        pass
    assert time.monotonic() - start < 5
