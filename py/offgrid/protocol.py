"""The typed protocol between the controller and the engine worker.

This module is the single source of truth: `python3 build.py protocol` generates
`web/shared/protocol.gen.js` (the schema as data: names, ranges, defaults) from
the dataclasses below; `web/shared/protocol.js` validates frames with it.
`python3 build.py` stops, and a test fails, while that file is stale.
Names and ranges that other code needs (backends, KV cache types, the context
size's range) are read from here (`BACKENDS`, `field_range`), never repeated.

A frame on the wire is a JSON object: ``{"type": <class name>, "id": <request
id>, "v": PROTOCOL_VERSION, ...fields}``. Events carry the id of the request
that caused them ("" for unsolicited events such as Hello).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

# The vocabulary and the events live in modules of their own; this module is the protocol's API.
from .protocol_events import (BackendFallback, Delta, Diagnostics, EngineError, GenerateEnd, GenerateStart, Hello,
                              LoadProgress, Log, ModelInfo, ModelList, ModelLoaded, ModelUnloaded, SelfTestResult,
                              Speed, StorageReport, StoredModel, TokenCount)
from .protocol_values import (BACKENDS, ERROR_CODES, KV_CACHE_TYPES, MAX_DEPTH, PROTOCOL_VERSION, ROLES, Backend, ChatMessage,
                              EndReason, ErrorCode, KvCache, LoadPhase, LogLevel, Message, Role, Sampling, _range,
                              field_range)

# Requests (controller -> worker)


@dataclass(frozen=True)
class LoadModel(Message):
    """Load a catalog model (`model_id`), or a GGUF served by this origin (`url`)."""

    kind: ClassVar[str] = "request"
    model_id: str = ""
    url: str = ""
    n_ctx: int = field(default=2048, metadata=_range(128, 131072))
    n_threads: int = field(default=0, metadata=_range(0, 64))  # 0: choose for the device
    backend: Backend = "auto"
    engine: str = ""  # engine build id from engine/builds.json ("" = choose for the browser)
    kv_cache: KvCache = ""


@dataclass(frozen=True)
class SwitchModel(LoadModel):
    """Unload the current model and load another; the controller keeps the conversation."""


@dataclass(frozen=True)
class UnloadModel(Message):
    kind: ClassVar[str] = "request"


@dataclass(frozen=True)
class ListModels(Message):
    kind: ClassVar[str] = "request"


@dataclass(frozen=True)
class Chat(Message):
    kind: ClassVar[str] = "request"
    messages: list[ChatMessage] = field(default_factory=list)
    sampling: Sampling = field(default_factory=Sampling)


@dataclass(frozen=True)
class ChatBatch(Message):
    """Several independent chats generated concurrently by the loaded model.

    Delta and GenerateEnd events carry the prompt's `index`."""

    kind: ClassVar[str] = "request"
    prompts: list[list[ChatMessage]] = field(default_factory=list)
    sampling: Sampling = field(default_factory=Sampling)


@dataclass(frozen=True)
class Continue(Message):
    """Resume an answer: `messages` ends with the partial assistant turn to extend."""

    kind: ClassVar[str] = "request"
    messages: list[ChatMessage] = field(default_factory=list)
    sampling: Sampling = field(default_factory=Sampling)


@dataclass(frozen=True)
class CountTokens(Message):
    """Count tokens with the loaded model's own tokenizer: `text` as a raw prompt,
    or, when `messages` is given, the chat prompt its template makes of them."""

    kind: ClassVar[str] = "request"
    text: str = ""
    messages: list[ChatMessage] = field(default_factory=list)


@dataclass(frozen=True)
class InspectModel(Message):
    """Answered by a ModelLoaded event describing the loaded model."""

    kind: ClassVar[str] = "request"


@dataclass(frozen=True)
class Complete(Message):
    kind: ClassVar[str] = "request"
    prompt: str = ""
    sampling: Sampling = field(default_factory=Sampling)


@dataclass(frozen=True)
class Stop(Message):
    """Abort the generation started by request `target` ("" = whatever runs)."""

    kind: ClassVar[str] = "request"
    target: str = ""


@dataclass(frozen=True)
class GetDiagnostics(Message):
    kind: ClassVar[str] = "request"


@dataclass(frozen=True)
class GetStorage(Message):
    """Answered by a StorageReport: the models stored on this device, usage and quota."""

    kind: ClassVar[str] = "request"


@dataclass(frozen=True)
class DeleteModel(Message):
    """Remove every stored version of a model (unloading it first); answered by a StorageReport."""

    kind: ClassVar[str] = "request"
    model_id: str = ""


@dataclass(frozen=True)
class SelfTest(Message):
    """Greedy-decode a fixed prompt for `n_tokens` on the GPU (WebGPU) and on the
    CPU with the loaded model; answered by SelfTestResult."""

    kind: ClassVar[str] = "request"
    n_tokens: int = field(default=8, metadata=_range(1, 64))


REQUESTS: tuple[type[Message], ...] = (
    LoadModel,
    SwitchModel,
    UnloadModel,
    ListModels,
    InspectModel,
    Chat,
    ChatBatch,
    Complete,
    Continue,
    Stop,
    CountTokens,
    GetDiagnostics,
    GetStorage,
    DeleteModel,
    SelfTest,
)
EVENTS: tuple[type[Message], ...] = (
    Hello,
    ModelList,
    LoadProgress,
    ModelLoaded,
    ModelUnloaded,
    GenerateStart,
    Delta,
    GenerateEnd,
    TokenCount,
    Speed,
    Log,
    Diagnostics,
    StorageReport,
    BackendFallback,
    SelfTestResult,
    EngineError,
)
MESSAGE_TYPES: dict[str, type[Message]] = {c.__name__: c for c in REQUESTS + EVENTS}
# The dataclasses that messages carry inside them (lists of models, sampling, ...).
OBJECTS: tuple[type, ...] = (ChatMessage, Sampling, ModelInfo, StoredModel)


# Encoding, decoding and the schema live in codec.py; they are part of this API.
from .codec import ProtocolError, decode, encode, loads, schema  # noqa: E402,F401  (re-exported)

__all__ = [
    "ProtocolError", "decode", "encode", "loads", "schema", "PROTOCOL_VERSION", "MAX_DEPTH", "MESSAGE_TYPES", "REQUESTS", "EVENTS", "OBJECTS",
    "ROLES", "BACKENDS", "KV_CACHE_TYPES", "ERROR_CODES", "field_range",
    "Role", "Backend", "KvCache", "EndReason", "LoadPhase", "LogLevel", "ErrorCode", "ChatMessage", "Sampling", "Message",
    *(c.__name__ for c in REQUESTS + EVENTS), "ModelInfo", "StoredModel",
]
