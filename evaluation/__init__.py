"""Retrieval and answer evaluation over labelled sets: ingests with the pipeline, queries with the service."""
