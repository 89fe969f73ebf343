"""Results grouped by document (search/grouping.py)."""

from km_search.search.grouping import MORE_PER_DOCUMENT, group_ranked, grouped_depth


def ranked(*chunks):
    return [(cid, 1.0 - i / 100, None, None) for i, cid in enumerate(chunks)]


def test_one_group_per_document_in_order_of_its_best_passage():
    docs = {1: "a", 2: "a", 3: "b", 4: "a", 5: "c", 6: "b"}
    groups = group_ranked(ranked(1, 2, 3, 4, 5, 6), docs, k=10)
    assert [[cid for cid, *_ in g] for g in groups] == [[1, 2, 4], [3, 6], [5]]


def test_k_and_offset_count_documents():
    docs = {1: "a", 2: "a", 3: "b", 4: "c", 5: "d"}
    assert [g[0][0] for g in group_ranked(ranked(1, 2, 3, 4, 5), docs, k=2)] == [1, 3]
    assert [g[0][0] for g in group_ranked(ranked(1, 2, 3, 4, 5), docs, k=2, offset=2)] == [4, 5]
    assert group_ranked(ranked(1, 2), docs, k=2, offset=5) == []


def test_more_is_bounded():
    docs = dict.fromkeys(range(10), "long")
    (group,) = group_ranked(ranked(*range(10)), docs, k=3)
    assert [cid for cid, *_ in group] == list(range(1 + MORE_PER_DOCUMENT))


def test_depth_grows_with_the_page():
    assert grouped_depth(10, 0, 100) == 100
    assert grouped_depth(10, 40, 100) == 250
