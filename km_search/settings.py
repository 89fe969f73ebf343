"""The one settings object. Every knob is an env var `KM_<NAME>`; the README lists them all."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KM_", env_file=".env", extra="ignore")

    index_dir: Path = Field(Path("indexes"), description="Folder holding the index snapshots.")
    index: str = Field("default", description="Index name used when --index is not given.")
    model: str = Field(
        "all-MiniLM-L6-v2",
        description="Embedding model: 'all-MiniLM-L6-v2' (bundled) or a path to a local "
        "sentence-transformers model folder.",
    )
    embed_batch_size: int = Field(32, ge=1, description="Passages per embedding batch.")
    chunk_words: int = Field(150, ge=20, description="Target passage size in words.")
    chunk_overlap: int = Field(30, ge=0, description="Words repeated between consecutive passages.")
    pack_sections: bool = Field(False, description="Join runs of short sibling sections into one passage.")
    fusion: Literal["convex", "rrf"] = Field("convex", description="How dense and lexical ranks are fused.")
    dense_weight: float = Field(0.7, ge=0.0, le=1.0, description="Weight of the dense score in convex fusion.")
    rrf_k: int = Field(60, ge=1, description="The k constant of reciprocal rank fusion.")
    candidates: int = Field(100, ge=1, description="Candidates taken from each retriever before fusion.")
    max_k: int = Field(100, ge=1, description="Largest k a query may ask for.")
    max_query_chars: int = Field(1000, ge=1, description="Longest query accepted.")
    max_file_mb: float = Field(100.0, gt=0, description="Files larger than this are skipped at ingest.")
    keep_snapshots: int = Field(3, ge=1, description="Published snapshots kept per index.")
    host: str = Field("127.0.0.1", description="Address `km serve` binds.")
    port: int = Field(8000, description="Port `km serve` listens on.")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Browser origins (scheme://host[:port]) allowed to call the API from their pages, "
        "comma-separated, e.g. 'https://intranet.example,https://wiki.example'. Empty: none; other origins "
        "get no CORS headers, so browsers refuse them.",
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        """'https://a.example, https://b.example' -> a list; each entry must be a bare origin."""
        items = value.replace(",", " ").split() if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            return value
        origins = []
        for item in items:
            origin = str(item).strip().rstrip("/")
            parts = urlsplit(origin)
            if origin != "*" and (parts.scheme not in ("http", "https") or not parts.netloc or parts.path):
                raise ValueError(
                    f"KM_CORS_ORIGINS entry {item!r} is not an origin: write it as scheme://host[:port], "
                    "e.g. https://intranet.example"
                )
            origins.append(origin)
        return origins

    def index_path(self, name: str | None = None) -> Path:
        return self.index_dir / (name or self.index)


@lru_cache
def get_settings() -> Settings:
    return Settings()
