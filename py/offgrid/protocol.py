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
from dataclasses import fields as _fields
from typing import Any, ClassVar, Literal, get_args

PROTOCOL_VERSION = 1

Role = Literal["system", "user", "assistant"]
Backend = Literal["auto", "webgpu", "wasm-mt", "wasm-st"]
# The KV cache's element type; "" = the backend's own (q8_0 on the CPU, f16 on WebGPU).
KvCache = Literal["", "f16", "q8_0", "f32"]
EndReason = Literal["stop", "length", "aborted", "error"]
LoadPhase = Literal["download", "verify", "store", "read", "init"]
LogLevel = Literal["debug", "info", "warn", "error"]
ErrorCode = Literal[
    "bad_message",  # not a frame: wrong JSON, unknown type, wrong version
    "bad_field",  # a field is missing, of the wrong type or out of range
    "no_model",  # the request needs a loaded model
    "unknown_model",  # the model id is not in the catalog
    "busy",  # a generation is running and this request cannot wait
    "download_failed",
    "integrity",  # a downloaded chunk did not match its SHA-256
    "storage_full",  # the browser's storage quota cannot hold the model
    "out_of_memory",  # the model (weights + KV cache + buffers) will not fit this device
    "load_failed",
    "inference_failed",
    "aborted",  # Stop ended a request that has no GenerateEnd to say so (CountTokens)
    "version_mismatch",  # worker and controller were built from different sources
    "internal",
]

# The names above as tuples, for code that checks or lists them (the same tuples are
# exported to JS by the generated module: ENUMS.Backend, ...).
ROLES: tuple[str, ...] = get_args(Role)
BACKENDS: tuple[str, ...] = get_args(Backend)
KV_CACHE_TYPES: tuple[str, ...] = get_args(KvCache)
ERROR_CODES: tuple[str, ...] = get_args(ErrorCode)


def _range(lo: float | None = None, hi: float | None = None) -> dict[str, Any]:
    return {"min": lo, "max": hi}


def field_range(cls: type, name: str) -> tuple[Any, Any]:
    """The (min, max) that the protocol allows for field `name` of `cls`,
    e.g. field_range(LoadModel, "n_ctx"); KeyError when the field has no range."""
    for f in _fields(cls):
        if f.name == name:
            if "min" not in f.metadata:
                raise KeyError(f"{cls.__name__}.{name} has no range")
            return f.metadata["min"], f.metadata["max"]
    raise KeyError(f"{cls.__name__} has no field {name!r}")


# ---------------------------------------------------------------- value types


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True)
class Sampling:
    """Sampling settings; names follow llama.cpp's server."""

    temperature: float = field(default=0.7, metadata=_range(0.0, 2.0))
    top_k: int = field(default=40, metadata=_range(0, 1000))
    top_p: float = field(default=0.95, metadata=_range(0.0, 1.0))
    min_p: float = field(default=0.05, metadata=_range(0.0, 1.0))
    repeat_penalty: float = field(default=1.1, metadata=_range(0.0, 4.0))
    seed: int = field(default=-1, metadata=_range(-1, 2**31 - 1))
    max_tokens: int = field(default=512, metadata=_range(1, 32768))
    stop: list[str] = field(default_factory=list)


# ------------------------------------------------------------------- messages


@dataclass(frozen=True)
class Message:
    """Base of every frame. `kind` tells requests from events."""

    kind: ClassVar[str] = ""
    id: str = ""
    v: int = PROTOCOL_VERSION


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


# Events (worker -> controller)


@dataclass(frozen=True)
class Hello(Message):
    """First frame of a worker: what it was built from and what it found."""

    kind: ClassVar[str] = "event"
    protocol_version: int = PROTOCOL_VERSION
    libllama_version: str = ""
    engine: str = ""


@dataclass(frozen=True)
class ModelInfo:
    model_id: str
    name: str
    file: str
    bytes: int
    sha256: str
    quantization: str
    license: str
    cached: bool = False
    version: str = ""
    context_length: int = 0  # the context the model was trained for


@dataclass(frozen=True)
class ModelList(Message):
    kind: ClassVar[str] = "event"
    models: list[ModelInfo] = field(default_factory=list)
    default_id: str = ""


@dataclass(frozen=True)
class LoadProgress(Message):
    kind: ClassVar[str] = "event"
    model_id: str = ""
    phase: LoadPhase = "download"
    loaded: int = 0  # bytes
    total: int = 0  # bytes
    from_cache: bool = False
    rate: float = 0.0  # bytes per second lately (0: not known yet)


@dataclass(frozen=True)
class ModelLoaded(Message):
    kind: ClassVar[str] = "event"
    model_id: str = ""
    name: str = ""
    architecture: str = ""
    parameters: str = ""  # the size label, e.g. "135M"
    quantization: str = ""
    bytes: int = 0
    n_ctx: int = 0
    n_ctx_train: int = 0
    n_vocab: int = 0
    n_layer: int = 0
    n_embd: int = 0
    chat_template: str = ""
    backend: str = ""
    engine: str = ""  # the engine build that runs it
    kv_cache: str = ""  # the KV cache's element type
    threads: int = 0
    load_ms: float = 0.0
    from_cache: bool = False
    notice: str = ""  # what the person should know about this load (e.g. a context made smaller to fit memory)


@dataclass(frozen=True)
class ModelUnloaded(Message):
    kind: ClassVar[str] = "event"
    model_id: str = ""


@dataclass(frozen=True)
class GenerateStart(Message):
    kind: ClassVar[str] = "event"


@dataclass(frozen=True)
class Delta(Message):
    """New text of an answer; `n_tokens` counts the tokens generated so far."""

    kind: ClassVar[str] = "event"
    text: str = ""
    n_tokens: int = 0
    index: int = 0  # which prompt of a ChatBatch


@dataclass(frozen=True)
class GenerateEnd(Message):
    kind: ClassVar[str] = "event"
    reason: EndReason = "stop"
    text: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    index: int = 0  # which prompt of a ChatBatch


@dataclass(frozen=True)
class TokenCount(Message):
    kind: ClassVar[str] = "event"
    n_tokens: int = 0
    cached_tokens: int = 0  # of n_tokens, taken from the engine's prompt cache (not evaluated again)


@dataclass(frozen=True)
class Speed(Message):
    kind: ClassVar[str] = "event"
    prefill_tps: float = 0.0  # prompt tokens per second
    decode_tps: float = 0.0  # generated tokens per second
    ttft_ms: float = 0.0  # request sent to first Delta, measured in the worker
    backend: str = ""


@dataclass(frozen=True)
class Log(Message):
    kind: ClassVar[str] = "event"
    level: LogLevel = "info"
    message: str = ""


@dataclass(frozen=True)
class Diagnostics(Message):
    kind: ClassVar[str] = "event"
    backend: str = ""
    backend_reason: str = ""
    threads: int = 0
    cross_origin_isolated: bool = False
    hardware_concurrency: int = 0
    webgpu_adapter: str = ""
    webgpu_features: list[str] = field(default_factory=list)
    jspi: bool = False
    memory64: bool = False
    compat: bool = False
    device_memory_gb: float = 0.0
    user_agent: str = ""
    libllama_version: str = ""
    engine: str = ""  # the engine build in use, e.g. "simd" or "stock (no SIMD kernels)"
    kv_cache: str = ""  # the KV cache's element type in use (or the backend's, before a load)
    # The WebGPU adapter as the browser describes it (empty/0 without one).
    webgpu_vendor: str = ""
    webgpu_architecture: str = ""
    webgpu_description: str = ""
    webgpu_fallback: bool = False  # isFallbackAdapter (a software adapter)
    shader_f16: bool = False
    subgroups: bool = False
    max_buffer_size: int = 0  # bytes
    max_storage_buffer_binding_size: int = 0  # bytes
    gpu_layers: str = ""  # layers llama.cpp offloaded to the GPU, e.g. "31/31" ("" = CPU)
    # Where llama.cpp put the loaded model's weights, e.g. "CPU 29 MiB, WASM_Q4_1_F32 76 MiB" (our
    # builds repack q4_1 weights into WASM_Q4_1_F32); "" before a load.
    weight_buffers: str = ""
    browser: str = ""  # e.g. "Chromium 156"
    platform: str = ""  # e.g. "Linux x86_64"
    self_test: str = ""  # the last GPU-vs-CPU self-test for this model and adapter, in words
    fallbacks: list[str] = field(default_factory=list)  # backends that failed this session, and why


@dataclass(frozen=True)
class BackendFallback(Message):
    """The chosen backend failed (load error, out of memory, lost device, failed
    self-test); the worker moved to `to_backend` by itself. A ModelLoaded follows."""

    kind: ClassVar[str] = "event"
    model_id: str = ""
    from_backend: str = ""
    to_backend: str = ""
    reason: str = ""


@dataclass(frozen=True)
class SelfTestResult(Message):
    """Token agreement of greedy decoding on the GPU and on the CPU."""

    kind: ClassVar[str] = "event"
    model_id: str = ""
    adapter: str = ""
    n_tokens: int = 0
    agreement: float = 0.0  # share of positions where the CPU, given the GPU's text so far, picks the GPU's token
    matched_prefix: int = 0  # tokens equal before the first difference
    threshold: float = 0.0
    passed: bool = False
    gpu_text: str = ""
    cpu_text: str = ""
    gpu_layers: str = ""  # offloaded layers of the GPU run, e.g. "31/31"
    error: str = ""  # why no comparison could be made ("" when it ran)


@dataclass(frozen=True)
class StoredModel:
    model_id: str
    name: str
    version: str
    bytes: int  # size of this version
    stored_bytes: int  # how much of it is in storage (less while a download is unfinished)
    complete: bool
    current: bool  # the version the catalog offers now (False: an update is available)


@dataclass(frozen=True)
class StorageReport(Message):
    kind: ClassVar[str] = "event"
    models: list[StoredModel] = field(default_factory=list)
    usage: int = 0  # bytes this site uses (all of its storage, not only models)
    quota: int = 0  # bytes the browser lets this site use
    persisted: bool = False  # True: the browser will not evict it under storage pressure


@dataclass(frozen=True)
class EngineError(Message):
    kind: ClassVar[str] = "event"
    code: ErrorCode = "internal"
    message: str = ""
    hint: str = ""
    field: str = ""  # the offending field, for bad_field


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
from .codec import ProtocolError, decode, encode, schema  # noqa: E402,F401  (re-exported)

__all__ = ["ProtocolError", "decode", "encode", "schema", "PROTOCOL_VERSION", "MESSAGE_TYPES",
           "ROLES", "BACKENDS", "KV_CACHE_TYPES", "ERROR_CODES", "field_range"]
