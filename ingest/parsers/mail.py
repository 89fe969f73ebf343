"""E-mail: one message (`.eml`) or a mailbox of them (`.mbox`).

A message's subject is its title, From its author, Date its created date; Message-ID, In-Reply-To
and References are kept in `extra` (`thread` is the id of the message that started the thread).
The body is the text/plain part (else the HTML one, read by the HTML parser) without the quoted
reply ("> …" lines and the "On … wrote:" line before them) and without the signature (after "-- "),
so a thread's text is indexed once, where it was written. Attachments of formats km-search reads
become sections of their own, under the attachment's name, anchored "attachment=<name>".

The pipeline takes one Document per file, so `parse` turns an mbox into one Document with a section
per message (anchor "msg=<n>", n counted from 1, under the message's subject);
`parse_mbox_messages` gives a Document per message for when the pipeline can take several.
"""

from __future__ import annotations

import contextvars
import email
import email.policy
import re
import tempfile
from dataclasses import dataclass, replace
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import quote

from selectolax.lexbor import LexborHTMLParser

from km_search.errors import ParseError
from km_search.types import Document, DocumentMeta, Section

from ._common import (
    EMPTY_FILE,
    SectionBuilder,
    collapse,
    decode_fallback,
    iso_date,
    read_bytes,
    require_text,
)
from .html import walk_sections
from .text import join_paragraph


MAX_ATTACHMENT_DEPTH = 3  # messages attached to messages attached to …: stop reading attachments there
_HEADERS = ("from", "date", "subject", "message-id")
_MSG_ID = re.compile(r"<([^<>\s]+)>")
_WROTE = re.compile(r"(?:wrote|writes|schrieb|a écrit|escribió|scrisse|napisał)\s*:\s*$", re.IGNORECASE)
_ON = re.compile(r"^\s*(?:On|Am|Le|El|Il|W dniu)\s", re.IGNORECASE)
_ORIGINAL = re.compile(r"^\s*-{2,}\s*(?:Original Message|Ursprüngliche Nachricht|Message d'origine)\s*-{2,}\s*$", re.IGNORECASE)
_QUOTE_CLASSES = "blockquote, .gmail_quote, .gmail_signature, .moz-cite-prefix, .moz-signature, #divRplyFwdMsg, #appendonsend"
_MBOX_FROM = re.compile(rb"(?:\A|(?<=\n\n)|(?<=\r\n\r\n))From [^\n]*\n")
_MBOXRD_ESCAPE = re.compile(rb"^>(>*From )", re.MULTILINE)
_UNSAFE_NAME = re.compile(r"[^\w.-]+")
_depth: contextvars.ContextVar[int] = contextvars.ContextVar("mail_attachment_depth", default=0)


@dataclass(frozen=True)
class Message:
    """What one message gives: body and attachment sections (anchors as for an .eml) and metadata."""

    sections: tuple[Section, ...]
    meta: DocumentMeta
    subject: str


def parse(path: Path, rel_path: str) -> Document:
    if path.suffix.lower() == ".mbox":
        return parse_mbox(path, rel_path)
    message = read_message(message_bytes(read_bytes(path)), path.stem)
    if message is None:
        raise ParseError(f"{EMPTY_FILE} (the message has no body text, subject or readable attachment)")
    return Document(path=rel_path, format="email", sections=message.sections, meta=message.meta)


def parse_mbox(path: Path, rel_path: str) -> Document:
    """The whole mailbox as one Document: each message's sections anchored "msg=<n>" under its subject."""
    messages = mbox_messages(path)
    sections = tuple(
        replace(s, heading_path=(m.subject or f"Message {n}", *s.heading_path), anchor=f"msg={n}")
        for n, m in messages
        for s in m.sections
    )
    authors = distinct_authors(a for _, m in messages for a in m.meta.authors)
    dates = sorted(d for _, m in messages if (d := m.meta.created))
    meta = DocumentMeta(
        title=path.stem,
        authors=authors,
        created=dates[0] if dates else None,
        modified=dates[-1] if dates else None,
        extra={"messages": str(len(messages))},
    )
    return Document(path=rel_path, format="mbox", sections=sections, meta=meta)


def parse_mbox_messages(path: Path, rel_path: str) -> list[Document]:
    """A Document per message with text (all with the mailbox's path); every section anchored "msg=<n>"."""
    return [
        Document(
            path=rel_path,
            format="email",
            sections=tuple(replace(s, anchor=f"msg={n}") for s in m.sections),
            meta=m.meta,
        )
        for n, m in mbox_messages(path)
    ]


def mbox_raw_messages(path: Path) -> list[tuple[int, bytes]]:
    """(1-based position in the mailbox, the message's bytes as an .eml file holds them)."""
    data = read_bytes(path)
    if b"\x00" in data[:8192]:
        raise ParseError("binary file, not an mbox mailbox")
    if not data.startswith(b"From "):
        raise ParseError("not an mbox mailbox: it does not start with a 'From ' separator line")
    starts = [m.end() for m in _MBOX_FROM.finditer(data)]
    ends = [m.start() for m in _MBOX_FROM.finditer(data)][1:] + [len(data)]
    return [(n, _MBOXRD_ESCAPE.sub(rb"\1", data[start:end])) for n, (start, end) in enumerate(zip(starts, ends), start=1)]


def is_blank_message(raw: bytes) -> bool:
    """A message with no subject, no body text and no attachment: nothing a reader could find."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    if msg.get("Subject", "").strip() or any(True for _ in msg.iter_attachments()):
        return False
    body = msg.get_body(preferencelist=("plain", "html"))
    return body is None or not body.get_content().strip()


def mbox_messages(path: Path) -> list[tuple[int, Message]]:
    """(1-based position in the mailbox, message) for each message that has text."""
    raw_messages = mbox_raw_messages(path)
    out = []
    for n, raw in raw_messages:
        message = read_message(email.message_from_bytes(raw, policy=email.policy.default), f"{path.stem} message {n}")
        if message is not None:
            out.append((n, message))
    if not out:
        raise ParseError(f"{EMPTY_FILE} (none of its {len(raw_messages)} messages has text)")
    return out


def message_bytes(data: bytes) -> EmailMessage:
    if b"\x00" in data[:8192]:
        raise ParseError("binary file, not an e-mail message")
    msg = email.message_from_bytes(data, policy=email.policy.default)
    if not any(msg.get(h) for h in _HEADERS):
        raise ParseError("not an e-mail message: it has no From, Date, Subject or Message-ID header")
    return msg  # type: ignore[return-value]


def read_message(msg: EmailMessage, fallback_title: str) -> Message | None:
    """The message's sections and metadata; None when it has no text at all."""
    subject = collapse(header_text(msg, "subject"))
    body = body_part(msg)
    builder = SectionBuilder()
    for paragraph in body_paragraphs(body) if body is not None else ():
        builder.add(paragraph)
    try:
        sections = list(builder.finish())
    except ParseError:  # no body text: the attachments or the subject may still carry the message
        sections = []
    attached: list[str] = []
    for name, payload in attachments(msg, body):
        found = attachment_sections(name, payload)
        if found:
            attached.append(name)
            sections.extend(found)
    if not sections and subject:  # "Meeting moved to 3pm" and nothing else: the subject is the message
        sections.append(Section(subject))
    if not sections:
        return None
    meta = DocumentMeta(
        title=subject or fallback_title,
        authors=distinct_authors(addresses(msg, "from")),
        created=date_of(msg),
        extra=thread_fields(msg) | ({"attachments": ", ".join(attached)} if attached else {})
        | {k: v for k in ("to", "cc") if (v := ", ".join(addresses(msg, k)))},
    )
    return Message(require_text(sections), meta, subject)


def header_text(msg: EmailMessage, name: str) -> str:
    try:
        value = msg.get(name)
    except Exception:  # noqa: BLE001 - a header the policy cannot parse
        return ""
    return str(value) if value is not None else ""


def addresses(msg: EmailMessage, name: str) -> list[str]:
    """The header's people as 'Name <email>' (or the bare address), as the other formats' authors."""
    try:
        header = msg.get(name)
        found = list(getattr(header, "addresses", ()) or ())
    except Exception:  # noqa: BLE001
        header, found = None, []
    out = []
    for address in found:
        person, addr = collapse(address.display_name or ""), address.addr_spec or ""
        if addr == "<>":
            addr = ""
        if person and addr:
            out.append(f"{person} <{addr}>")
        elif person or addr:
            out.append(person or addr)
    if not out and header is not None and collapse(str(header)):
        out.append(collapse(str(header)))
    return out


def distinct_authors(people) -> tuple[str, ...]:
    """Each person once, by address (else name), in the order they first appear."""
    seen: dict[str, str] = {}
    for person in people:
        m = re.search(r"<([^<>]+)>$", person)
        seen.setdefault((m[1] if m else person).lower(), person)
    return tuple(seen.values())


def date_of(msg: EmailMessage) -> str | None:
    try:
        header = msg.get("date")
        return iso_date(getattr(header, "datetime", None)) if header is not None else None
    except Exception:  # noqa: BLE001 - 'Date: yesterday'
        return None


def thread_fields(msg: EmailMessage) -> dict[str, str]:
    """message_id, in_reply_to, references (ids without their <>) and thread: the first message's id."""
    own = message_ids(header_text(msg, "message-id"))
    parent = message_ids(header_text(msg, "in-reply-to"))
    references = message_ids(header_text(msg, "references"))
    out: dict[str, str] = {}
    if own:
        out["message_id"] = own[0]
    if parent:
        out["in_reply_to"] = parent[0]
    if references:
        out["references"] = " ".join(references)
    root = (references or parent or own or [None])[0]
    if root:
        out["thread"] = root
    return out


def message_ids(value: str) -> list[str]:
    ids = _MSG_ID.findall(value)
    return ids or [v for v in value.split() if "@" in v]


def body_part(msg: EmailMessage) -> EmailMessage | None:
    try:
        return msg.get_body(preferencelist=("plain", "html"))  # type: ignore[return-value]
    except Exception:  # noqa: BLE001 - a broken MIME structure
        return None


def part_text(part: EmailMessage) -> str:
    """A text part as str: its declared charset, else the usual fallbacks (never fails)."""
    try:
        return part.get_content()
    except Exception:  # noqa: BLE001 - unknown charset, broken transfer encoding
        payload = part.get_payload(decode=True) or b""
        return decode_fallback(payload, part.get_content_charset())


def body_paragraphs(part: EmailMessage) -> list[str]:
    """The body's own text, one entry per paragraph: quoted replies and the signature left out."""
    text = part_text(part)
    if part.get_content_type() == "text/html":
        return [line for line in strip_replies(html_lines(text)) if line.strip()]
    paragraphs, current = [], []
    for line in strip_replies(text.splitlines()) + [""]:
        if line.strip():
            current.append(line)
        elif current:
            paragraphs.append(join_paragraph(current))
            current = []
    return paragraphs


def html_lines(source: str) -> list[str]:
    """An HTML body's lines, read by the HTML parser, without the quoted message and signature blocks."""
    tree = LexborHTMLParser(source)
    for node in tree.css(_QUOTE_CLASSES):
        node.decompose()
    sections, _ = walk_sections(tree)
    lines: list[str] = []
    heading: tuple[str, ...] = ()
    for section in sections:
        if section.heading_path and section.heading_path != heading:
            heading = section.heading_path
            lines.append(heading[-1])
        lines.extend(section.text.split("\n"))
    return lines


def strip_replies(lines: list[str]) -> list[str]:
    """Lines up to the signature ('-- ') or a quoted original ('-----Original Message-----'),
    without '>' lines and the 'On … wrote:' line that introduces them."""
    out: list[str] = []
    quoting = False
    for line in lines:
        if line in ("-- ", "--") or _ORIGINAL.match(line):
            break
        if line.lstrip().startswith(">"):
            if not quoting:
                drop_attribution(out)
                quoting = True
            continue
        if quoting:
            if out and out[-1].strip():
                out.append("")  # the text after a quote is a paragraph of its own
            quoting = False
        out.append(line)
    return out


def drop_attribution(out: list[str]) -> None:
    """Remove the 'On Mon, 4 Mar 2024, Ann <ann@x.org> wrote:' line (Gmail wraps it in two) before a quote."""
    i = len(out)
    while i and not out[i - 1].strip():
        i -= 1
    if i and _WROTE.search(out[i - 1]):
        i -= 1
        if i and not _ON.match(out[i]) and _ON.match(out[i - 1]):
            i -= 1
        del out[i:]


def attachments(msg: EmailMessage, body: EmailMessage | None):
    """(file name, bytes) of every attached file, forwarded messages included as .eml files."""
    if _depth.get() >= MAX_ATTACHMENT_DEPTH:
        return
    todo = list(iter_parts(msg))
    while todo:
        part = todo.pop(0)
        if part is body:
            continue
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()
            inner = inner[0] if isinstance(inner, list) and inner else inner
            if isinstance(inner, email.message.Message):
                subject = collapse(str(inner.get("subject") or "")) or "message"
                yield part.get_filename() or f"{subject}.eml", inner.as_bytes()
            continue
        if part.is_multipart():
            todo[:0] = iter_parts(part)
            continue
        name = part.get_filename()
        if name:
            yield collapse(name), part.get_payload(decode=True) or b""


def iter_parts(part: EmailMessage) -> list[EmailMessage]:
    try:
        return list(part.iter_parts())
    except Exception:  # noqa: BLE001
        return []


def attachment_sections(name: str, payload: bytes) -> list[Section]:
    """An attachment's sections under its name, anchored 'attachment=<name>'; none for formats
    km-search does not read and for files that fail to parse (the message itself still counts)."""
    from . import parse_file, parser_for  # the registry imports this module

    filename = safe_name(name)
    if not payload.strip() or parser_for(Path(filename)) is None:
        return []
    token = _depth.set(_depth.get() + 1)
    try:
        with tempfile.TemporaryDirectory(prefix="km-mail-") as tmp:
            path = Path(tmp) / filename
            path.write_bytes(payload)
            doc = parse_file(path, filename)
    except ParseError:
        return []
    finally:
        _depth.reset(token)
    anchor = "attachment=" + quote(name, safe="")
    return [Section(s.text, (name, *s.heading_path), anchor, s.page) for s in doc.sections]


def safe_name(name: str) -> str:
    """A file name to write the attachment under: no folders, no odd characters, its extensions kept."""
    base = _UNSAFE_NAME.sub("_", name.replace("\\", "/").rsplit("/", 1)[-1]).lstrip("._")
    return base[-120:] or "attachment"
