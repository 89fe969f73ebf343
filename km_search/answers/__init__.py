"""Direct answers quoted from passages, the optional language model, the query log and knowledge gaps."""
