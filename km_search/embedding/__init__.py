"""Text to vectors: the sentence-transformers model and its exported graphs, the reranker, fine-tuning."""
