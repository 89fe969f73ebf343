"""km-search: self-hosted semantic search and question answering over an organization's documents.

Importing this package is cheap: models, FAISS and FastAPI load only when used.
"""

__version__ = "0.1.0"
