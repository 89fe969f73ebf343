"""The query side of retrieval: dense and lexical candidates fused, re-ranked, filtered, snippeted."""
