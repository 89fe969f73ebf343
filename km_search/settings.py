"""The one settings object. Every knob is an env var `KM_<NAME>`; docs/configuration.md is generated from it."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _listed(value: object) -> list | tuple | None:
    """An env var's 'a, b c' (or a list given in code) as a list; None for anything else."""
    items = value.replace(",", " ").split() if isinstance(value, str) else value
    return items if isinstance(items, list | tuple) else None


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
    embed_backend: Literal["torch", "onnx", "onnx-int8", "openvino", "openvino-int8"] = Field(
        "openvino-int8",
        description="How passages and queries are embedded: torch (sentence-transformers), onnx, onnx-int8, "
        "openvino or openvino-int8 (exported locally from the model once per machine, cached in KM_CACHE_DIR; "
        "chosen by measurement, docs/performance.md). An index's queries use the backend it was built with.",
    )
    cache_dir: Path | None = Field(
        None,
        description="Folder of what is made once per machine and shared by every index: the embedding graphs "
        "exported and calibrated for each model, backend and library version (docs/performance.md). Unset: "
        "$XDG_CACHE_HOME/km-search, else ~/.cache/km-search. If it cannot be written, each process exports "
        "into a temporary folder again (slow; a warning says so).",
    )
    embed_threads: int | None = Field(
        None, ge=1, description="CPU threads one embedding call uses; unset: all cores."
    )
    ann_exact_rows: int = Field(
        50_000, ge=0,
        description="Shards up to this many passages get an exact flat index; larger ones an IVF index with "
        "4-bit fast-scan codes whose candidates are rescored exactly (docs/performance.md).",
    )
    ann_nprobe: int = Field(
        0, ge=0, description="IVF lists searched per query; 0 picks the measured default for the shard size."
    )
    chunk_words: int = Field(350, ge=20, description="Target passage size in words.")
    chunk_overlap: int = Field(70, ge=0, description="Words repeated between consecutive passages.")
    pack_document_words: int = Field(
        1000, ge=0,
        description="Documents of at most this many words (a decision record, a runbook) get their short sibling "
        "sections joined into passages, each part keeping its own deep link; entries of a list under one heading "
        "and sections headed by a question stay apart (0: never; docs/quality.md).",
    )
    pack_words: int = Field(
        120, ge=0, description="Largest passage that packing joins sections into, in words (0: chunk_words); "
        "larger joins lost on the staff handbook (docs/quality.md).",
    )
    sentence_vectors: Literal["all", "first-pass"] = Field(
        "first-pass",
        description="Which sentences get a vector stored at ingest for /ask: first-pass (those inside the passage's "
        "own forward pass; /ask embeds at most KM_ANSWER_CANDIDATES of the rest per question) or all (one more pass "
        "over each passage's text past the model's token limit: ingest about 1.7x slower, /ask ~10 ms faster). "
        "Search is the same either way (docs/performance.md).",
    )
    fusion: Literal["convex", "rrf"] = Field("convex", description="How dense and lexical ranks are fused.")
    dense_weight: float = Field(0.7, ge=0.0, le=1.0, description="Weight of the dense score in convex fusion.")
    rrf_k: int = Field(60, ge=1, description="The k constant of reciprocal rank fusion.")
    candidates: int = Field(100, ge=1, description="Candidates taken from each retriever before fusion.")
    window_weight: float = Field(
        0.7, ge=0.0, le=1.0,
        description="Share of a passage's dense score given to its best window (late chunking; 0: its pooled vector alone).",
    )
    dense_neighbor_weight: float = Field(
        0.2, ge=0.0, le=1.0,
        description="Share of its best same-section neighbour's dense score a passage adds to its own (0: off).",
    )
    lexical_neighbor_weight: float = Field(
        0.0, ge=0.0, le=1.0,
        description="Share of its best same-section neighbour's BM25 score a passage adds to its own (0: off; "
        "0.15 until 2026-12-04: off raised the bench's mean, docs/quality.md).",
    )
    sentence_weight: float = Field(
        0.15, ge=0.0, le=1.0,
        description="Lift a first-page passage gets from its best sentence's similarity to the question, min-max "
        "scaled over the page (0: off; docs/quality.md).",
    )
    feedback_passages: int = Field(
        0, ge=0, le=20, description="Top passages whose centroid moves the dense query (Rocchio feedback); 0 turns it off."
    )
    feedback_weight: float = Field(0.7, ge=0.0, le=1.0, description="Weight kept on the original query in feedback.")
    reranker: str | None = Field(None, description="Path to a local sentence-transformers CrossEncoder; off when unset.")
    rerank_depth: int = Field(30, ge=1, description="How many fused candidates the reranker reorders.")
    max_k: int = Field(100, ge=1, description="Largest k a query may ask for.")
    max_query_chars: int = Field(1000, ge=1, description="Longest query accepted.")
    max_file_mb: float = Field(100.0, gt=0, description="Files larger than this are skipped at ingest.")
    max_pages: int = Field(2000, ge=1, description="PDFs with more pages than this are reported as failed, not parsed.")
    parse_workers: int | None = Field(
        None, ge=0, description="Processes that parse files at ingest; unset: one per CPU core but one; 0 parses in-process."
    )
    parse_timeout_s: float = Field(
        120.0, gt=0, description="Seconds one file may take to parse; past it its worker is killed and the file fails."
    )
    parse_memory_mb: int = Field(
        2048, ge=0, description="Address-space cap of each parse worker in MB (RLIMIT_AS); 0 = no cap."
    )
    shard_rows: int = Field(
        500_000, ge=1, description="Passages per shard of a snapshot written from now on (each shard is one FAISS index, BM25 postings and windows; `km serve --ray` serves one per Ray Serve deployment)."
    )
    ray_address: str | None = Field(
        None, description="Ray cluster for `km ingest --ray` and `km serve --ray` when the option is not given: `auto` (the cluster `ray start` made here, or RAY_ADDRESS), `local` (start one in-process) or `ray://host:10001` (docs/scale-out.md)."
    )
    ray_workers: int | None = Field(
        None, ge=1, description="Ingest workers on the Ray cluster (each parses and embeds batches of files, loading the model once); unset: one per CPU the cluster has."
    )
    keep_snapshots: int = Field(
        3, ge=1, description="Published snapshots kept per index (besides any a running server still reads)."
    )
    reload_interval_s: float = Field(
        2.0, ge=0, description="How often `km serve` checks for a newly published snapshot and swaps it in; 0: never."
    )
    git_authors: bool = Field(
        True, description="Read commit authors of files inside a git working tree at ingest (one `git log` per repository)."
    )
    crawl_concurrency: int = Field(
        2, ge=1, le=16, description="Requests a crawl (`km ingest https://…`) has in flight at a time (docs/sources.md)."
    )
    crawl_delay_s: float = Field(
        0.5, ge=0, description="Seconds between the starts of two requests to one host (a longer robots.txt Crawl-delay wins)."
    )
    crawl_max_pages: int = Field(
        5000, ge=1, description="Most URLs one crawl fetches; past it the crawl stops and says so (pages not reached keep their indexed version)."
    )
    crawl_page_mb: float = Field(50.0, gt=0, description="Largest page or linked file a crawl downloads, in MB; larger ones fail.")
    crawl_max_mb: float = Field(2000.0, gt=0, description="Most MB one crawl downloads in all; past it the crawl stops and says so.")
    crawl_timeout_s: float = Field(30.0, gt=0, description="Seconds a crawl waits to connect, and between bytes, for one request.")
    crawl_headers: SecretStr | None = Field(
        None,
        description="HTTP headers a crawl sends to the site it crawls (never elsewhere), one 'Name: value' per line "
        "(or separated by a literal \\n), e.g. 'Authorization: Bearer …' for an intranet behind a token.",
    )
    crawl_cookie: SecretStr | None = Field(
        None, description="Cookie header a crawl sends to the site it crawls, e.g. 'session=…' copied from a signed-in browser."
    )
    crawl_groups: Annotated[list[str], NoDecode] = Field(
        [],
        description="Groups that may read crawled pages, comma-separated; unset: public. Set it when KM_CRAWL_HEADERS "
        "or KM_CRAWL_COOKIE open pages not everyone may read (docs/access-control.md).",
    )
    expert_passages: int = Field(50, ge=1, le=1000, description="Passages retrieved to rank experts for a query.")
    expert_half_life_days: float = Field(
        730.0, gt=0, description="Age at which an involvement counts halfway between full (today) and half weight."
    )
    answer_threshold: float = Field(
        0.39, ge=0.0, le=1.0,
        description="Answer confidence below which /ask abstains; calibrated with `km eval-answers` (docs/answers.md).",
    )
    answer_passages: int = Field(5, ge=1, le=20, description="Top passages an answer may quote, or the language model sees.")
    answer_sentences: int = Field(3, ge=1, le=10, description="Most sentences one extractive answer quotes.")
    answer_candidates: int = Field(
        4, ge=0,
        description="Of the quoted passages' sentences without a vector stored at ingest, embed only about this many "
        "per answer (the best half by their score without the similarity, with their neighbours; 0: all of them). "
        "Sentences with a stored vector are always scored (docs/answers.md, 'Answer latency').",
    )
    answer_stored_sentences: bool = Field(
        True,
        description="Score an answer's sentences with the sentence vectors stored at ingest (pooled from the "
        "passage's own forward pass) instead of embedding each one at query time; sentences without one are "
        "embedded (docs/answers.md, 'Answer latency').",
    )
    answer_refine: int = Field(
        3, ge=0, le=50,
        description="Embed alone at query time the best this many sentences by their stored vectors (with the one "
        "most similar to the question, and the best one until it was so embedded) and score them by that: stored "
        "vectors pick the candidates, the answer and its confidence come from sentences embedded alone (0: stored "
        "vectors alone, faster, fewer right answers; docs/answers.md, 'Answer latency').",
    )
    llm_url: str | None = Field(
        None, description="OpenAI-compatible chat completions endpoint for generative answers (server root, /v1 or "
        "the full /v1/chat/completions address), e.g. a local llama.cpp, vLLM or Ollama server. Unset: extractive only.",
    )
    llm_model: str = Field("default", min_length=1, description="Model name sent to the LLM endpoint.")
    llm_timeout_s: float = Field(
        30.0, gt=0, le=600, description="Seconds a generative answer may take before the extractive one is returned."
    )
    llm_api_key: SecretStr | None = Field(None, description="Bearer token for the LLM endpoint, if it wants one.")
    llm_max_tokens: int = Field(512, ge=16, le=8192, description="Longest generated answer, in tokens.")
    query_log: bool = Field(
        True, description="Log every search and ask (time, results, scores, answered, latency) and feedback to "
        "<index folder>/querylog.sqlite, for `km gaps`.",
    )
    gap_confidence: float | None = Field(
        None, ge=0.0, le=1.0,
        description="Queries whose evidence scored below this count as weak in the gaps report; unset: KM_ANSWER_THRESHOLD.",
    )
    gap_similarity: float = Field(
        0.6, gt=0.0, le=1.0, description="Cosine similarity at which two weak questions share a gap topic."
    )
    workers: int | None = Field(
        None, ge=1, le=64,
        description="Processes `km serve` runs on its port (each with its own model and query-embedding cache, "
        "all mapping the same snapshot files, sharing one rate limit). More than one lets the Python work of "
        "concurrent requests use more than one core (docs/performance.md). Unset: one per CPU core, at most 4 "
        "(each holds its own model: ~0.25 GB of its own memory, measured); 1 with --ray. `km serve` sets it for its "
        "processes, each then embedding queries on its share of the cores (one OpenVINO stream per core // workers).",
    )
    rate_limit_file: Path | None = Field(
        None, description="SQLite file in which the processes of one `km serve` share their rate-limit buckets; "
        "`km serve` sets it for its workers (unset: each process counts in memory).",
    )
    host: str = Field("127.0.0.1", description="Address `km serve` binds.")
    port: int = Field(8000, description="Port `km serve` listens on.")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Browser origins (scheme://host[:port]) allowed to call the API from their pages, "
        "comma-separated, e.g. 'https://intranet.example,https://wiki.example'. Empty: none; other origins "
        "get no CORS headers, so browsers refuse them.",
    )
    auth: Literal["keys", "header", "none"] = Field(
        "keys", description="How callers are identified: 'keys' (API keys, `Authorization: Bearer KEY`, created with "
        "`km keys create`), 'header' (user and groups from headers set by a trusted SSO reverse proxy) or 'none' "
        "(one local user who sees everything; `make run` uses it, never expose it on a network).",
    )
    keys_file: Path | None = Field(
        None, description="SQLite file of the API keys (only their hashes); unset: <KM_INDEX_DIR>/keys.sqlite."
    )
    auth_user_header: str = Field("X-Forwarded-User", min_length=1,
                                  description="KM_AUTH=header: the header carrying the user's name.")
    auth_groups_header: str = Field("X-Forwarded-Groups", min_length=1,
                                    description="KM_AUTH=header: the header carrying the user's groups, comma-separated.")
    auth_admin_groups: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="KM_AUTH=header: users in any of these groups (comma-separated) are admins; the others readers.",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="KM_AUTH=header: addresses or CIDR networks of the reverse proxies whose user headers are "
        "believed, comma-separated (e.g. '10.0.0.5,10.1.0.0/16'); requests from anywhere else are refused.",
    )
    rate_limit: int = Field(
        600, ge=0, description="Requests per minute per API key, user or client address (token bucket, bursts up to "
        "the same number); 0 turns the limit off. Past it: 429 with Retry-After.",
    )
    max_body_kb: int = Field(
        64, ge=1, description="Largest request body in KiB (feedback, JSON); uploads are bounded by KM_MAX_FILE_MB instead."
    )

    @field_validator("auth_admin_groups", "crawl_groups", mode="before")
    @classmethod
    def _split_groups(cls, value: object) -> object:
        if isinstance(value, str):
            return [g.strip().lower() for g in value.split(",") if g.strip()]
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _check_proxies(cls, value: object) -> object:
        """'10.0.0.5, 10.1.0.0/16' -> a list; each entry must be an IP address or network."""
        import ipaddress

        items = _listed(value)
        if items is None:
            return value
        for item in items:
            try:
                ipaddress.ip_network(str(item).strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"KM_TRUSTED_PROXIES entry {item!r} is not an IP address or network: write e.g. 10.0.0.5 or 10.0.0.0/24"
                ) from None
        return [str(i).strip() for i in items]

    def keys_path(self) -> Path:
        return self.keys_file or self.index_dir / "keys.sqlite"

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        """'https://a.example, https://b.example' -> a list; each entry must be a bare origin."""
        items = _listed(value)
        if items is None:
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

    @field_validator("llm_url")
    @classmethod
    def _check_llm_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                f"KM_LLM_URL {value!r} is not an http(s) URL: write it as e.g. http://127.0.0.1:8080/v1 "
                "(an OpenAI-compatible server), or leave it unset for extractive answers only"
            )
        return value.strip()

    def index_path(self, name: str | None = None) -> Path:
        return self.index_dir / (name or self.index)

    def cache_path(self) -> Path:
        return self.cache_dir.expanduser() if self.cache_dir else default_cache_dir()


def cpu_cores() -> int:
    """The CPU cores this process may run on (its affinity, which a container's CPU set limits)."""
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/km-search, else ~/.cache/km-search (the XDG base directory rule)."""
    import os

    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(base) if base and Path(base).is_absolute() else Path.home() / ".cache") / "km-search"


@lru_cache
def get_settings() -> Settings:
    return Settings()


def offline_environment() -> None:
    """What the edges (the `km` command, the HTTP app) set before any model loads: no hub look-ups
    (models load from local folders only) and no tokenizer threads fighting the parse workers."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def serving_environment() -> None:
    """What a serving process sets before FAISS loads: one OpenMP thread. A query is one vector and
    FAISS splits its work by query, so a second thread only spun after each search, taking a core
    from the other requests (measured: 17.6 -> 11.1 ms of CPU a search; docs/performance.md)."""
    import os

    os.environ.setdefault("OMP_NUM_THREADS", "1")
