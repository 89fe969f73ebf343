"""Domain errors. Each message says what happened and what to do about it."""


class KmError(Exception):
    """Base class: the HTTP layer maps these to one error shape, the CLI to one line on stderr."""

    status_code = 500


class IndexNotFound(KmError):
    status_code = 503

    def __init__(self, name: str, where: str):
        super().__init__(
            f"index '{name}' has no published snapshot under {where}: "
            f"build it with `km ingest PATH --index {name}`"
        )


class IndexMismatch(KmError):
    status_code = 503


class BadQuery(KmError):
    status_code = 422


class ParseError(KmError):
    """A file could not be turned into a Document; the ingest report shows the reason."""

    status_code = 422


class NothingToIndex(ParseError):
    """A file with no text of its own that is not broken: front matter only, a redirect stub, a page
    that only redirects. The ingest report lists it under `skipped_files` with this reason."""


class NothingToPublish(KmError):
    """Ingest found nothing it could index; the previous snapshot stays published."""

    status_code = 400

    def __init__(self, message: str, report=None):
        super().__init__(message)
        self.report = report


class DocumentNotFound(KmError):
    """The source viewer was asked for a document the published index does not hold (or no longer can read)."""

    status_code = 404


class ModelNotFound(KmError):
    """KM_MODEL names neither the bundled model nor a sentence-transformers folder on disk."""

    status_code = 503


class KeyNotFound(KmError):
    status_code = 404


class UnknownQuery(KmError):
    """Feedback for a query id the query log does not hold."""

    status_code = 404


class QueryLogUnavailable(KmError):
    status_code = 503


class LLMError(KmError):
    """The language model could not give an answer; the message says why, for the answer's note."""

    status_code = 502


class AuthConfigError(KmError):
    """A setting combination that cannot work; raised when the app is created, before it serves."""


class UploadRejected(KmError):
    """The uploaded file is not something the index can take; nothing was changed."""

    def __init__(self, message: str, status_code: int = 422):
        super().__init__(message)
        self.status_code = status_code


class ClusterUnavailable(KmError):
    """No Ray cluster at the address given, or a shard of a served snapshot that stays unreachable."""

    status_code = 503
