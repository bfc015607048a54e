// GENERATED from py/offgrid/protocol.py by `python3 build.py protocol`. Do not edit: change the
// dataclasses and run that; `python3 build.py` stops while this file is stale.
// Data only: the validator and make() are in protocol.js. Import from there, never from here.
//
// A field is {t, default?, min?, max?}; a field without a default is required. Its type t is
// bool, int, float, str, a name in ENUMS or OBJECTS, or one of those followed by [] (a list).

export const PROTOCOL_VERSION = 1;
export const MAX_DEPTH = 16;

/** Message type names, so call sites fail loudly on a typo. */
export const T = {
  LoadModel: "LoadModel",
  SwitchModel: "SwitchModel",
  UnloadModel: "UnloadModel",
  ListModels: "ListModels",
  InspectModel: "InspectModel",
  Chat: "Chat",
  ChatBatch: "ChatBatch",
  Complete: "Complete",
  Continue: "Continue",
  Stop: "Stop",
  CountTokens: "CountTokens",
  GetDiagnostics: "GetDiagnostics",
  GetStorage: "GetStorage",
  DeleteModel: "DeleteModel",
  SelfTest: "SelfTest",
  Hello: "Hello",
  ModelList: "ModelList",
  LoadProgress: "LoadProgress",
  ModelLoaded: "ModelLoaded",
  ModelUnloaded: "ModelUnloaded",
  GenerateStart: "GenerateStart",
  Delta: "Delta",
  GenerateEnd: "GenerateEnd",
  TokenCount: "TokenCount",
  Speed: "Speed",
  Log: "Log",
  Diagnostics: "Diagnostics",
  StorageReport: "StorageReport",
  BackendFallback: "BackendFallback",
  SelfTestResult: "SelfTestResult",
  EngineError: "EngineError",
};

export const REQUESTS = ["LoadModel", "SwitchModel", "UnloadModel", "ListModels", "InspectModel", "Chat", "ChatBatch", "Complete", "Continue", "Stop", "CountTokens", "GetDiagnostics", "GetStorage", "DeleteModel", "SelfTest"];
export const EVENTS = ["Hello", "ModelList", "LoadProgress", "ModelLoaded", "ModelUnloaded", "GenerateStart", "Delta", "GenerateEnd", "TokenCount", "Speed", "Log", "Diagnostics", "StorageReport", "BackendFallback", "SelfTestResult", "EngineError"];

/** The protocol's named sets of strings (its Literal types). */
export const ENUMS = {
  Backend: ["auto", "webgpu", "wasm-mt", "wasm-st"],
  EndReason: ["stop", "length", "aborted", "error"],
  ErrorCode: ["bad_message", "bad_field", "no_model", "unknown_model", "busy", "download_failed", "integrity", "storage_full", "out_of_memory", "load_failed", "inference_failed", "aborted", "version_mismatch", "internal"],
  KvCache: ["", "f16", "q8_0", "f32"],
  LoadPhase: ["download", "verify", "store", "read", "init"],
  LogLevel: ["debug", "info", "warn", "error"],
  Role: ["system", "user", "assistant"],
};

/** The objects that messages carry: field name -> field. */
export const OBJECTS = {
  ChatMessage: {role: {t: "Role"}, content: {t: "str"}},
  Sampling: {temperature: {t: "float", default: 0.7, min: 0.0, max: 2.0}, top_k: {t: "int", default: 40, min: 0, max: 1000}, top_p: {t: "float", default: 0.95, min: 0.0, max: 1.0}, min_p: {t: "float", default: 0.05, min: 0.0, max: 1.0}, repeat_penalty: {t: "float", default: 1.1, min: 0.0, max: 4.0}, seed: {t: "int", default: -1, min: -1, max: 2147483647}, max_tokens: {t: "int", default: 512, min: 1, max: 32768}, stop: {t: "str[]", default: []}},
  ModelInfo: {model_id: {t: "str"}, name: {t: "str"}, file: {t: "str"}, bytes: {t: "int"}, sha256: {t: "str"}, quantization: {t: "str"}, license: {t: "str"}, cached: {t: "bool", default: false}, version: {t: "str", default: ""}, context_length: {t: "int", default: 0}},
  StoredModel: {model_id: {t: "str"}, name: {t: "str"}, version: {t: "str"}, bytes: {t: "int"}, stored_bytes: {t: "int"}, complete: {t: "bool"}, current: {t: "bool"}},
};

/** Every request and event: field name -> field, in declaration order. */
export const MESSAGES = {
  LoadModel: {id: {t: "str", default: ""}, v: {t: "int", default: 1}, model_id: {t: "str", default: ""}, url: {t: "str", default: ""}, n_ctx: {t: "int", default: 2048, min: 128, max: 131072}, n_threads: {t: "int", default: 0, min: 0, max: 64}, backend: {t: "Backend", default: "auto"}, engine: {t: "str", default: ""}, kv_cache: {t: "KvCache", default: ""}},
  SwitchModel: {id: {t: "str", default: ""}, v: {t: "int", default: 1}, model_id: {t: "str", default: ""}, url: {t: "str", default: ""}, n_ctx: {t: "int", default: 2048, min: 128, max: 131072}, n_threads: {t: "int", default: 0, min: 0, max: 64}, backend: {t: "Backend", default: "auto"}, engine: {t: "str", default: ""}, kv_cache: {t: "KvCache", default: ""}},
  UnloadModel: {id: {t: "str", default: ""}, v: {t: "int", default: 1}},
  ListModels: {id: {t: "str", default: ""}, v: {t: "int", default: 1}},
  InspectModel: {id: {t: "str", default: ""}, v: {t: "int", default: 1}},
  Chat: {id: {t: "str", default: ""}, v: {t: "int", default: 1}, messages: {t: "ChatMessage[]", default: []}, sampling: {t: "Sampling", default: {}}},
  ChatBatch: {id: {t: "str", default: ""}, v: {t: "int", default: 1}, prompts: {t: "ChatMessage[][]", default: []}, sampling: {t: "Sampling", default: {}}},
  Complete: {id: {t: "str", default: ""}, v: {t: "int", default: 1}, prompt: {t: "str", default: ""}, sampling: {t: "Sampling", default: {}}},
  Continue: {id: {t: "str", default: ""}, v: {t: "int", default: 1}, messages: {t: "ChatMessage[]", default: []}, sampling: {t: "Sampling", default: {}}},
  Stop: {id: {t: "str", default: ""}, v: {t: "int", default: 1}, target: {t: "str", default: ""}},
  CountTokens: {id: {t: "str", default: ""}, v: {t: "int", default: 1}, text: {t: "str", default: ""}, messages: {t: "ChatMessage[]", default: []}},
  GetDiagnostics: {id: {t: "str", default: ""}, v: {t: "int", default: 1}},
  GetStorage: {id: {t: "str", default: ""}, v: {t: "int", default: 1}},
  DeleteModel: {id: {t: "str", default: ""}, v: {t: "int", default: 1}, model_id: {t: "str", default: ""}},
  SelfTest: {id: {t: "str", default: ""}, v: {t: "int", default: 1}, n_tokens: {t: "int", default: 8, min: 1, max: 64}},
  Hello: {id: {t: "str", default: ""}, v: {t: "int", default: 1}, protocol_version: {t: "int", default: 1}, libllama_version: {t: "str", default: ""}, engine: {t: "str", default: ""}},
  ModelList: {id: {t: "str", default: ""}, v: {t: "int", default: 1}, models: {t: "ModelInfo[]", default: []}, default_id: {t: "str", default: ""}},
  LoadProgress: {id: {t: "str", default: ""}, v: {t: "int", default: 1}, model_id: {t: "str", default: ""}, phase: {t: "LoadPhase", default: "download"}, loaded: {t: "int", default: 0}, total: {t: "int", default: 0}, from_cache: {t: "bool", default: false}, rate: {t: "float", default: 0.0}},
  ModelLoaded: {id: {t: "str", default: ""}, v: {t: "int", default: 1}, model_id: {t: "str", default: ""}, name: {t: "str", default: ""}, architecture: {t: "str", default: ""}, parameters: {t: "str", default: ""}, quantization: {t: "str", default: ""}, bytes: {t: "int", default: 0}, n_ctx: {t: "int", default: 0}, n_ctx_train: {t: "int", default: 0}, n_vocab: {t: "int", default: 0}, n_layer: {t: "int", default: 0}, n_embd: {t: "int", default: 0}, chat_template: {t: "str", default: ""}, backend: {t: "str", default: ""}, engine: {t: "str", default: ""}, kv_cache: {t: "str", default: ""}, threads: {t: "int", default: 0}, load_ms: {t: "float", default: 0.0}, from_cache: {t: "bool", default: false}, notice: {t: "str", default: ""}},
  ModelUnloaded: {id: {t: "str", default: ""}, v: {t: "int", default: 1}, model_id: {t: "str", default: ""}},
  GenerateStart: {id: {t: "str", default: ""}, v: {t: "int", default: 1}},
  Delta: {id: {t: "str", default: ""}, v: {t: "int", default: 1}, text: {t: "str", default: ""}, n_tokens: {t: "int", default: 0}, index: {t: "int", default: 0}},
  GenerateEnd: {id: {t: "str", default: ""}, v: {t: "int", default: 1}, reason: {t: "EndReason", default: "stop"}, text: {t: "str", default: ""}, prompt_tokens: {t: "int", default: 0}, completion_tokens: {t: "int", default: 0}, cached_tokens: {t: "int", default: 0}, index: {t: "int", default: 0}},
  TokenCount: {id: {t: "str", default: ""}, v: {t: "int", default: 1}, n_tokens: {t: "int", default: 0}, cached_tokens: {t: "int", default: 0}},
  Speed: {id: {t: "str", default: ""}, v: {t: "int", default: 1}, prefill_tps: {t: "float", default: 0.0}, decode_tps: {t: "float", default: 0.0}, ttft_ms: {t: "float", default: 0.0}, backend: {t: "str", default: ""}},
  Log: {id: {t: "str", default: ""}, v: {t: "int", default: 1}, level: {t: "LogLevel", default: "info"}, message: {t: "str", default: ""}},
  Diagnostics: {id: {t: "str", default: ""}, v: {t: "int", default: 1}, backend: {t: "str", default: ""}, backend_reason: {t: "str", default: ""}, threads: {t: "int", default: 0}, cross_origin_isolated: {t: "bool", default: false}, hardware_concurrency: {t: "int", default: 0}, webgpu_adapter: {t: "str", default: ""}, webgpu_features: {t: "str[]", default: []}, jspi: {t: "bool", default: false}, memory64: {t: "bool", default: false}, compat: {t: "bool", default: false}, device_memory_gb: {t: "float", default: 0.0}, user_agent: {t: "str", default: ""}, libllama_version: {t: "str", default: ""}, engine: {t: "str", default: ""}, kv_cache: {t: "str", default: ""}, webgpu_vendor: {t: "str", default: ""}, webgpu_architecture: {t: "str", default: ""}, webgpu_description: {t: "str", default: ""}, webgpu_fallback: {t: "bool", default: false}, shader_f16: {t: "bool", default: false}, subgroups: {t: "bool", default: false}, max_buffer_size: {t: "int", default: 0}, max_storage_buffer_binding_size: {t: "int", default: 0}, gpu_layers: {t: "str", default: ""}, weight_buffers: {t: "str", default: ""}, browser: {t: "str", default: ""}, platform: {t: "str", default: ""}, self_test: {t: "str", default: ""}, fallbacks: {t: "str[]", default: []}},
  StorageReport: {id: {t: "str", default: ""}, v: {t: "int", default: 1}, models: {t: "StoredModel[]", default: []}, usage: {t: "int", default: 0}, quota: {t: "int", default: 0}, persisted: {t: "bool", default: false}},
  BackendFallback: {id: {t: "str", default: ""}, v: {t: "int", default: 1}, model_id: {t: "str", default: ""}, from_backend: {t: "str", default: ""}, to_backend: {t: "str", default: ""}, reason: {t: "str", default: ""}},
  SelfTestResult: {id: {t: "str", default: ""}, v: {t: "int", default: 1}, model_id: {t: "str", default: ""}, adapter: {t: "str", default: ""}, n_tokens: {t: "int", default: 0}, agreement: {t: "float", default: 0.0}, matched_prefix: {t: "int", default: 0}, threshold: {t: "float", default: 0.0}, passed: {t: "bool", default: false}, gpu_text: {t: "str", default: ""}, cpu_text: {t: "str", default: ""}, gpu_layers: {t: "str", default: ""}, error: {t: "str", default: ""}},
  EngineError: {id: {t: "str", default: ""}, v: {t: "int", default: 1}, code: {t: "ErrorCode", default: "internal"}, message: {t: "str", default: ""}, hint: {t: "str", default: ""}, field: {t: "str", default: ""}},
};
