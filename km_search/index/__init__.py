"""The snapshot on disk, the only SQL: reader, writer, locks and garbage collection, dense and lexical shards."""
