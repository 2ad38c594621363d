"""OpenAI's chat-completion shapes: the request we accept and the replies, chunks and errors we send.

Only what a chat client uses is modelled (model, messages, temperature, stream); other OpenAI
fields are accepted and ignored, and `n`, tools or logprobs are not supported. The answer's own
fields (`rag.answer.answer_json`: `answer`, `citations` with their offsets in the original file,
`evidence`, `passages`, `abstained`, `uncertain`, `how`, `answered_by`) ride beside OpenAI's,
where its clients ignore them; `usage` is OpenAI's own.

The reply models (`ChatCompletion`, `ErrorBody` …) only document the bodies in the OpenAPI schema:
the dicts below and `answer_json` stay the one serialiser, and tests/test_schema_fuzz.py checks
that what is sent matches what is documented. They are closed (`extra="forbid"`), so a field
added to a reply but not here is caught there.
"""

from __future__ import annotations

import time
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from rag.answer import Answer, How, answer_json

# Strict: a string where a number or a list belongs is a 400, not silently converted.
REQUEST_CONFIG = ConfigDict(extra="ignore", strict=True)


class TextPart(BaseModel):
    """One part of a message's content given as a list (only text parts are read)."""

    model_config = REQUEST_CONFIG
    type: str
    text: str = ""


class Message(BaseModel):
    """A message of the conversation."""

    model_config = REQUEST_CONFIG
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None

    @property
    def text(self) -> str:
        """The message's text, its parts joined."""
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content if part.type == "text")
        return self.content or ""


class Filters(BaseModel):
    """Which articles to answer from (rag/scope.py): doc_ids or globs, dateline text, title words."""

    model_config = ConfigDict(extra="forbid", strict=True)
    doc_ids: list[str] = Field(default_factory=list, description="doc_ids or globs such as `002_*.txt`")
    dateline: str = Field("", description="text the dateline contains: a date (`April 15`) or a place (`Portvale`)")
    title: str = Field("", description="words the title contains")


class ChatRequest(BaseModel):
    """POST /v1/chat/completions: the last user message is the question, the earlier ones its history."""

    model_config = REQUEST_CONFIG
    model: str = Field(description="A name from GET /v1/models, e.g. `embedded`.")
    messages: list[Message] = Field(min_length=1)
    temperature: float | None = Field(None, ge=0, le=2)
    stream: bool = False
    top_k: int | None = Field(None, ge=1, le=50, description="Passages handed to the model (not OpenAI's).")
    filters: Filters | None = Field(None, description="Answer only from these articles (not OpenAI's).")

    def question_and_history(self) -> tuple[str, list[dict]]:
        """The last user message, and the user and assistant turns before it."""
        users = [i for i, m in enumerate(self.messages) if m.role == "user"]
        if not users:
            return "", []
        last = users[-1]
        turns = [m for m in self.messages[:last] if m.role in ("user", "assistant")]
        return self.messages[last].text, [{"role": m.role, "content": m.text} for m in turns]


class RetrieveRequest(BaseModel):
    """POST /v1/retrieve: the passages for a question, without an answer."""

    model_config = REQUEST_CONFIG
    question: str
    k: int | None = Field(None, ge=1, le=50)
    filters: Filters | None = None


class IngestRequest(BaseModel):
    """POST /v1/ingest as JSON: files or folders inside the articles folder to (re-)read."""

    model_config = REQUEST_CONFIG
    paths: list[str] = Field(default_factory=list)


# -- what is sent: documentation of the replies ---------------------------------------------

REPLY_CONFIG = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    """One sentence for a person, OpenAI's kind of error, and a short code."""

    model_config = REPLY_CONFIG
    message: str
    type: Literal["invalid_request_error", "authentication_error", "rate_limit_error", "server_error"]
    param: str | None
    code: str | None


class ErrorBody(BaseModel):
    """OpenAI's error body: every failure of the API leaves in this shape."""

    model_config = REPLY_CONFIG
    error: ErrorDetail


class PassageJSON(BaseModel):
    """A retrieved passage (`Passage.to_dict`); `start`/`end` index the original file."""

    model_config = REPLY_CONFIG
    doc_id: str
    title: str
    dateline: str
    text: str
    score: float
    similarity: float | None
    start: int
    end: int
    found_by: list[str]


class CitationJSON(PassageJSON):
    """A cited passage and the `[n]` that points at it."""

    marker: int


class EvidenceJSON(BaseModel):
    """A sentence that may answer the question (`Evidence.to_dict`), `cited` when the answer rests on it."""

    model_config = REPLY_CONFIG
    text: str
    passage: int
    doc_id: str
    title: str
    start: int
    end: int
    score: float
    confidence: float
    signals: dict[str, float]
    before: str
    cited: bool


class AnsweredBy(BaseModel):
    """The backend and model that answered, and a notice such as a fall-back."""

    model_config = REPLY_CONFIG
    backend: str
    model: str
    notice: str


class Usage(BaseModel):
    """OpenAI's token counts; 0 when no model ran."""

    model_config = REPLY_CONFIG
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AnswerFields(BaseModel):
    """The answer's own fields (`answer_json`), beside OpenAI's in a reply."""

    model_config = REPLY_CONFIG
    answer: str
    abstained: bool
    how: How
    uncertain: bool
    answered_by: AnsweredBy
    usage: Usage
    citations: list[CitationJSON]
    evidence: list[EvidenceJSON]
    passages: list[PassageJSON]


class AssistantMessage(BaseModel):
    """The reply's text, its `[n]` markers included."""

    model_config = REPLY_CONFIG
    role: Literal["assistant"]
    content: str


class Choice(BaseModel):
    """The one choice of a reply."""

    model_config = REPLY_CONFIG
    index: int
    message: AssistantMessage
    finish_reason: Literal["stop"]


class ChatCompletion(AnswerFields):
    """A whole reply (`completion`); with `stream: true`, server-sent `ChatCompletionChunk` events instead."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[Choice]


class Delta(BaseModel):
    """What a chunk adds: the role first, then text."""

    model_config = REPLY_CONFIG
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    """The one choice of a chunk; `finish_reason` is set on the last."""

    model_config = REPLY_CONFIG
    index: int
    delta: Delta
    finish_reason: Literal["stop"] | None


class ChatCompletionChunk(BaseModel):
    """One event of a streamed reply (`chunk`)."""

    model_config = REPLY_CONFIG
    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChunkChoice]


class LastChunk(ChatCompletionChunk, AnswerFields):
    """The last chunk, which carries the checked answer's fields and `usage`."""


class ModelEntry(BaseModel):
    """One model that can answer (`model_entry`)."""

    model_config = REPLY_CONFIG
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    """GET /v1/models."""

    model_config = REPLY_CONFIG
    object: Literal["list"]
    data: list[ModelEntry]


class RetrieveReply(BaseModel):
    """POST /v1/retrieve: the passages, best first."""

    model_config = REPLY_CONFIG
    passages: list[PassageJSON]


class DocumentEntry(BaseModel):
    """An indexed article."""

    model_config = REPLY_CONFIG
    doc_id: str
    title: str
    dateline: str
    chunks: int


class DocumentList(BaseModel):
    """GET /v1/documents."""

    model_config = REPLY_CONFIG
    documents: list[DocumentEntry]


class IngestReply(BaseModel):
    """POST /v1/ingest: the doc_ids added, updated, unchanged and removed, each file skipped with its
    reason, and where uploads were stored (`uploads/<safe name>`, inside the articles folder)."""

    model_config = REPLY_CONFIG
    added: list[str]
    updated: list[str]
    unchanged: list[str]
    removed: list[str]
    skipped: list[str]
    stored: list[str]
    chunks_written: int
    chunks_total: int
    seconds: float
    summary: str


# -- building the replies --------------------------------------------------------------------


def where(filters: Filters | None) -> dict | None:
    """The filters as `RAG.ask(where=...)` takes them."""
    return filters.model_dump() if filters else None


def completion_id() -> str:
    """A fresh id for one completion, in OpenAI's style."""
    return f"chatcmpl-{uuid.uuid4().hex}"


def completion(answer: Answer, model: str) -> dict:
    """A whole reply as a `chat.completion` object: OpenAI's envelope around `answer_json`'s fields."""
    choice = {"index": 0, "message": {"role": "assistant", "content": answer.text}, "finish_reason": "stop"}
    body = {"id": completion_id(), "object": "chat.completion", "created": int(time.time()), "model": model}
    return {**body, "choices": [choice], **answer_json(answer)}


def chunk(cid: str, model: str, delta: dict, finish_reason: str | None = None, extra: dict | None = None) -> dict:
    """One `chat.completion.chunk` of a streamed reply."""
    choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
    body = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
    return {**body, "choices": [choice], **(extra or {})}


def error(message: str, kind: str, code: str | None) -> dict:
    """OpenAI's error body."""
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def model_entry(name: str) -> dict:
    """One entry of GET /v1/models."""
    return {"id": name, "object": "model", "created": 0, "owned_by": "rag"}
