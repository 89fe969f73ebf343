import sqlite3

from km_search.lexical import fts_expression, lexical_search, query_terms
from km_search.snippets import snippet
from km_search.store import SCHEMA


def test_query_terms_drop_question_words_and_duplicates():
    assert query_terms("Why did we move billing to Postgres? billing!") == ["move", "billing", "postgres"]
    assert query_terms("who are you") == ["who", "are", "you"]  # only stopwords: keep them
    assert fts_expression('say "hi"') == '"say" OR "hi"'
    assert fts_expression("?!") is None


def test_fts_ranks_stemmed_matches_and_weights_headings():
    db = sqlite3.connect(":memory:")
    db.executescript(SCHEMA)
    rows = [
        (1, "Billing", "We migrated the billing database to PostgreSQL in 2023."),
        (2, "Travel", "Hotels in London cost at most 200 GBP per night."),
        (3, "Databases", "Postgres replication and backups."),
    ]
    db.executemany("INSERT INTO chunks_fts (rowid, heading, body) VALUES (?,?,?)", rows)
    ranked = lexical_search(db, "why did we migrate billing?", 10)
    assert [i for i, _ in ranked] == [1]  # 'migrate' matches 'migrated' through Porter stemming
    assert lexical_search(db, "hotel night", 10)[0][0] == 2
    assert all(score > 0 for _, score in lexical_search(db, "postgres billing", 10))


def test_snippet_marks_terms_and_escapes_html():
    text = "Intro words here. " * 10 + "The <b>VPN</b> client must be installed before the laptop is used." + " tail" * 50
    out = snippet(text, "install vpn", max_words=12)
    assert "<mark>VPN</mark>" in out and "<mark>installed</mark>" in out
    assert "&lt;b&gt;" in out and "<b>" not in out
    assert out.startswith("… ") and out.endswith(" …")


def test_lexical_search_within_allowed_rows():
    db = sqlite3.connect(":memory:")
    db.executescript(SCHEMA)
    db.executemany("INSERT INTO chunks_fts (rowid, heading, body) VALUES (?,?,?)",
                   [(i, "Notes", "billing " * (10 - i)) for i in range(1, 6)])
    assert [i for i, _ in lexical_search(db, "billing", 2)] == [1, 2]
    within = ("SELECT value FROM json_each(?)", ["[4, 5]"])
    assert [i for i, _ in lexical_search(db, "billing", 2, within=within)] == [4, 5]
