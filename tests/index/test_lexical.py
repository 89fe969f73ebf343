import random
import sqlite3

import numpy as np
import pytest

from km_search.index.lexical import LexicalIndex, Postings, build_postings, join_postings, query_terms, tokens
from km_search.search.snippets import snippet, word_spans


def index_of(passages, shard_rows=None, ids=None, **bm25):
    """A LexicalIndex over (heading, body) passages, chunk ids 1.. unless given, split into shards."""
    ids = np.asarray(ids if ids is not None else range(1, len(passages) + 1), dtype=np.int64)
    shard_rows = shard_rows or max(1, len(passages))
    shards, shard_ids = [], []
    for start in range(0, len(passages), shard_rows):
        shards.append(build_postings(passages[start : start + shard_rows]))
        shard_ids.append(ids[start : start + shard_rows])
    return LexicalIndex(shards, shard_ids, **bm25)


def test_query_terms_drop_question_words_and_duplicates():
    assert query_terms("Why did we move billing to Postgres? billing!") == ["move", "billing", "postgres"]
    assert query_terms("who are you") == ["who", "are", "you"]  # only stopwords: keep them
    assert query_terms("?!") == []


def test_analysis_stems_folds_diacritics_and_splits_underscores():
    assert tokens("Migrated the Databases") == ["migrat", "the", "databas"]
    assert tokens("Café_Crème") == ["cafe", "creme"]


def test_ranks_stemmed_matches_and_weights_headings():
    index = index_of([
        ("Billing", "We migrated the billing database to PostgreSQL in 2023."),
        ("Travel", "Hotels in London cost at most 200 GBP per night."),
        ("Databases", "Postgres replication and backups."),
    ])
    assert [i for i, _ in index.search("why did we migrate billing?", 10)] == [1]  # 'migrate' ~ 'migrated'
    assert index.search("hotel night", 10)[0][0] == 2
    assert all(score > 0 for _, score in index.search("postgres billing", 10))
    assert [i for i, _ in index.search("in the", 10)] == [1, 2]  # only stopwords: they are searched
    # A word in the heading counts as one in the body; a heading weight makes it count more or not at all.
    twin = index_of([("Notes", "database backups nightly"), ("Database", "notes backups nightly")])
    first, second = twin.search("database", 2)
    assert first[1] == pytest.approx(second[1])
    assert [i for i, _ in twin.search("database", 2, heading_weight=2.0)] == [2, 1]
    assert [i for i, _ in twin.search("database", 2, heading_weight=0.0)] == [1]


def test_search_within_allowed_rows_across_shards():
    index = index_of([("Notes", "billing " * (10 - i)) for i in range(1, 6)], shard_rows=2)
    assert [i for i, _ in index.search("billing", 2)] == [1, 2]
    assert [i for i, _ in index.search("billing", 2, allowed=np.array([4, 5, 99]))] == [4, 5]
    assert index.search("billing", 2, allowed=np.array([], dtype=np.int64)) == []


def random_corpus(count, seed=0):
    rng = random.Random(seed)
    words = ("replication backup postgres billing invoice migrate migrated migration network vpn laptop "
             "install installed installing printer office travel hotel London expense policy security key "
             "rotation deploy deployment kubernetes cluster node café naïve résumé").split()
    return [(" ".join(rng.choices(words, k=rng.randint(0, 4))), " ".join(rng.choices(words, k=rng.randint(1, 80))))
            for _ in range(count)]


@pytest.mark.parametrize("shard_rows", [None, 37])
def test_scores_are_fts5_bm25_whatever_the_sharding(shard_rows):
    """The oracle: SQLite FTS5's own bm25() with the tokenizer the index imitates; sharding changes nothing."""
    passages = random_corpus(300)
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE f USING fts5(heading, body, tokenize = 'porter unicode61 remove_diacritics 2')")
    db.executemany("INSERT INTO f (rowid, heading, body) VALUES (?,?,?)",
                   [(i, h, b) for i, (h, b) in enumerate(passages, 1)])
    index = index_of(passages, shard_rows, k1=1.2, b=0.75)  # FTS5's constants
    for query in ["migrating the billing database", "vpn laptop install", "cafe resume", "kubernetes",
                  "hotel in london expense policy", "security key rotation deployments"]:
        expression = " OR ".join(f'"{t}"' for t in query_terms(query))
        for weight, given in ((1.0, None), (2.0, 2.0)):  # the default, and heading occurrences counted twice
            expected = db.execute(f"SELECT rowid, -bm25(f, {weight}, 1.0) FROM f WHERE f MATCH ? ORDER BY bm25(f, {weight}, 1.0)",
                                  (expression,)).fetchall()
            got = index.search(query, len(passages), heading_weight=given)
            assert len(got) == len(expected) > 0, query
            assert dict(got) == pytest.approx(dict(expected), rel=1e-4), (query, weight)


def test_postings_survive_save_and_load(tmp_path):
    passages = random_corpus(50, seed=1)
    build_postings(passages).save(tmp_path / "shard.bm25")
    loaded = Postings.load(tmp_path / "shard.bm25")
    assert isinstance(loaded.rows, np.memmap)  # memory-mapped, not read at start-up
    ids = np.arange(100, 150)
    assert LexicalIndex([loaded], [ids]).search("billing vpn", 50) == index_of(passages, ids=ids).search("billing vpn", 50)


def test_document_frequencies_count_passages_and_honour_allowed():
    index = index_of([("A", "billing invoice"), ("B", "billing"), ("C", "invoices of hotels"), ("D", "hotel_billing")],
                     shard_rows=3)
    assert index.document_frequencies(["billing", "invoice", "zebra"]) == {"billing": 3, "invoice": 2, "zebra": 0}
    assert index.document_frequencies(["billing"], allowed=np.array([2, 3])) == {"billing": 1}
    assert index.document_frequencies(["hotel_billing"]) == {"hotel_billing": 1}  # both of its tokens


def test_empty_index_and_empty_shard():
    assert index_of([]).search("anything", 5) == []
    empty = build_postings([])
    assert empty.row_count == 0 and len(empty.terms) == 0
    with_empty = LexicalIndex([empty, build_postings([("", "vpn")])], [np.empty(0, np.int64), np.array([7])])
    assert [i for i, _ in with_empty.search("vpn", 5)] == [7]


def test_snippet_marks_terms_and_escapes_html():
    text = "Intro words here. " * 10 + "The <b>VPN</b> client must be installed before the laptop is used." + " tail" * 50
    out = snippet(text, "install vpn", max_words=12)
    assert "<mark>VPN</mark>" in out and "<mark>installed</mark>" in out
    assert "&lt;b&gt;" in out and "<b>" not in out
    assert out.startswith("… ") and out.endswith(" …")


def test_snippet_window_is_the_densest_and_marks_stem_prefixes():
    rng = random.Random(3)
    words = "deploy deployment deploys deep cat cats catalog vpn vpns tunnel the a of".split()
    for _ in range(50):
        text = " ".join(rng.choices(words, k=rng.randint(1, 120)))
        out = snippet(text, "deploy cat vpn", max_words=10)
        marked = [w for w in out.replace("<mark>", " <mark>").split() if w.startswith("<mark>")]
        window = [w for w in out.replace("<mark>", "").replace("</mark>", "").split() if w != "…"]
        # Every mark is a word the reference rule matches ('deploy' by its prefix 'depl', 'cat'/'vpn' exactly).
        assert all(w[6:-7] in {"deploy", "deployment", "deploys", "cat", "vpn"} for w in marked), out
        all_words = text.split()
        best = max(sum(w in {"deploy", "deployment", "deploys", "cat", "vpn"} for w in all_words[i : i + 10])
                   for i in range(max(1, len(all_words) - 9)))
        assert len(marked) == best and len(window) == min(10, len(all_words))


def test_word_spans_are_the_words_the_word_expression_finds():
    from km_search.text import WORD

    rng = random.Random(5)
    alphabet = list("abcXYZ09_ -.,'\n\t") + list("éßİǅﬁ²中𝔘…’—\u00a0\u200b")
    texts = ["", " ", "word", "Straße İstanbul ﬁle naïve", "x²³ 中文字 𝔘𝔫𝔦 _a_ b1", "lone \ud800 surrogate"]
    texts += ["".join(rng.choices(alphabet, k=rng.randint(1, 80))) for _ in range(300)]
    for text in texts:
        starts, ends = word_spans(text)
        assert list(zip(starts.tolist(), ends.tolist())) == [m.span() for m in WORD.finditer(text)], repr(text)


def test_snippet_marks_whole_words_only_where_a_word_begins():
    out = snippet("redeploy the deploys; undeployed deployment", "deploy", max_words=10)
    assert out == "redeploy the <mark>deploys</mark>; undeployed <mark>deployment</mark>"


def test_joined_postings_equal_postings_built_from_scratch():
    """An incremental ingest drops removed rows and appends new ones without analysing old passages."""
    old, new = random_corpus(60, seed=4), random_corpus(25, seed=5)
    keep = np.ones(len(old), dtype=bool)
    keep[[0, 7, 8, 30, 59]] = False
    joined = join_postings([(build_postings(old), keep), (build_postings(new), None)])
    scratch = build_postings([p for p, k in zip(old, keep) if k] + new)
    for name in ("terms", "offsets", "rows", "tf", "lengths"):
        assert np.array_equal(getattr(joined, name), getattr(scratch, name)), name
    assert getattr(joined, "rows").dtype == np.int32 and joined.tf.dtype == np.uint8
