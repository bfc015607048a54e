"""The protocol's events (worker -> controller); protocol.py is the API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from .protocol_values import PROTOCOL_VERSION, EndReason, ErrorCode, LoadPhase, LogLevel, Message

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
