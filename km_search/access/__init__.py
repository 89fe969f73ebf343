"""Who may read what: principals (users, keys, groups) and the API key store."""
