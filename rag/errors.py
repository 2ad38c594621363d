"""Named errors raised inside the package; the CLI and the app turn them into one sentence."""


class RagError(Exception):
    """Base class for every error this package raises on purpose."""


class BadInput(RagError):
    """A question, path or file the tool cannot use as given."""


class StoreMismatch(RagError):
    """The store was built with another embedding model than the one configured."""


class StoreError(RagError):
    """The store cannot be opened, read or written (permissions, server down, ...)."""


class EmbeddingFailed(RagError):
    """The embedding model failed part way through an ingest; what was already stored is kept."""


class BackendUnavailable(RagError):
    """The configured generator cannot answer (Ollama down, model missing, file corrupt)."""


class TooLarge(BadInput):
    """An upload or request body over the configured limit."""


class NotFound(BadInput):
    """A model, route or article that does not exist."""


class Unauthorized(RagError):
    """A request without the login the server asks for."""


class Busy(RagError):
    """Too many questions are already waiting for the model; try again shortly."""


def sentence(exc: Exception) -> str:
    """An error's message as one sentence for a person: capitalised, with a full stop."""
    text = str(exc).strip() or type(exc).__name__
    return text[0].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".")
