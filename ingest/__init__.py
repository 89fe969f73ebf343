"""Ingestion: discover files, parse them into Documents, chunk, embed, publish an index snapshot."""
