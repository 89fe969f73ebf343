"""Who is asking and what they may read: the Principal every request carries, and the one rule that
turns it into a retrieval restriction.

A document carries the groups allowed to read it (`public` by default). A reader sees a document
when they share a group with it; everyone is in `public`. The group `*` sees every document: the
local principal of `KM_AUTH=none` and the command line have it, and an admin key gets it only when
created with `--groups '*'`. The admin role itself grants operations (ingest, upload, delete, keys,
analytics), not documents. The restriction is applied in SQL over the documents table before
dense and lexical candidates are ranked (index/filter_sql.py), so results, counts and paging never reflect
a document the reader may not see. HTTP-free on purpose: the service and the CLI use it too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal

from km_search.types import SearchFilters

PUBLIC = "public"
ALL = "*"  # a principal's group that sees every document
ROLES = ("reader", "admin")
_GROUP = re.compile(r"^[a-z0-9*][a-z0-9_.:@*-]{0,63}$")


def normalize_groups(values: str | Iterable[str] | None, default: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Group names lower-cased and trimmed, duplicates dropped, order kept; 'a,b' counts as two.
    Names are letters, digits and `_ . : @ -` (or `*`), up to 64 characters; others are a ValueError."""
    if values is None:
        return default
    if isinstance(values, str):
        values = [values]
    out: dict[str, None] = {}
    for value in values:
        for name in str(value).replace(";", ",").split(","):
            name = name.strip().lower()
            if not name:
                continue
            if not _GROUP.match(name) or ("*" in name and name != ALL):
                raise ValueError(f"group name {name!r}: use letters, digits, '_', '.', ':', '@' or '-' (or '*' for all)")
            out[name] = None
    return tuple(out) or default


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: who (`id`, `name`), what they may do (`role`: 'reader' searches,
    asks and gives feedback; 'admin' also ingests, uploads, deletes, manages keys and sees
    analytics) and which documents they may read (`groups`; `*` for all)."""

    id: str
    name: str
    role: Literal["reader", "admin"] = "reader"
    groups: tuple[str, ...] = ()

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def sees_everything(self) -> bool:
        return ALL in self.groups

    def readable_groups(self) -> tuple[str, ...] | None:
        """The document groups this principal may read ('public' always among them); None: all."""
        if self.sees_everything:
            return None
        return tuple(dict.fromkeys((PUBLIC, *self.groups)))


# KM_AUTH=none and the command line: one local user who may do and read everything.
LOCAL = Principal(id="local", name="local", role="admin", groups=(ALL,))
# What an unrestricted caller is restricted to when nothing else is known: public documents only.
ANONYMOUS = Principal(id="anonymous", name="anonymous", role="reader", groups=())


def restrict(filters: SearchFilters | None, principal: Principal) -> SearchFilters:
    """The request's filters with the principal's access restriction added. The restriction always
    comes from the principal: a `groups` value already on the filters is replaced, never widened."""
    return replace(filters or SearchFilters(), groups=principal.readable_groups())
