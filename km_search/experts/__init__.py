"""Who knows about X: people named in documents and git history, ranked by their evidence."""
