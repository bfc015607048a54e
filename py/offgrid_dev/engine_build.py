"""Build the app's CPU engine from source: wllama 3.8.1 with llama.cpp's WASM SIMD kernels.

The stock @wllama/wllama wasm is built with ggml's generic C code: under
Emscripten, CMake reports the processor as x86. We build wllama's own C++ glue
and CMake project (from its npm package) against the llama.cpp that the
llama-cpp-python 0.3.36 sdist vendors, CPU only, with
`-DEMSCRIPTEN_SYSTEM_PROCESSOR` set to wasm32/wasm64, in a Debian sid chroot that
has emscripten, with our kernels and patches (engine_patches.py). The new glue is
swapped into wllama's published esm/index.js (one embedded string), so the JS API
is unchanged. Recipe and measurements: ../shared/wasm-simd/RECIPE.md.

Inputs, each pinned and checked: wllama from node_modules (npm ci checked it
against package-lock.json's integrity), the sdist by its sha256, the Debian
packages by the versions recorded in TOOLCHAIN (a moving suite: a difference is
printed, not hidden). The result is cached in <engine cache>/<key>, key = hash
of all of that plus the recipe files: a second build compiles nothing and makes
no request. The engine cache is machine-wide (engine_dir: /var/cache/offgrid/engine
for root, so every clone and CI reuse one compile; OFFGRID_ENGINE_CACHE overrides).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import tarfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import engine_patches
from .engine_patches import SOURCE_PATCH

ROOT = Path(__file__).resolve().parents[2]
RECIPE = Path(__file__).resolve().parent / "engine"
SERVER_STUB = ("server-decision.h", "server-decision.cpp")  # copied into llama.cpp's tools/server
KERNELS = ("wasm_dot_kernels.c", "wasm_flash_attn.cpp", "wasm_q4_1_repack.cpp")  # engine_patches puts them in
RECIPE_FILES = ("build-in-chroot.sh", *SERVER_STUB, "swap_glue.mjs", *KERNELS)
WLLAMA_PKG = ROOT / "node_modules" / "@wllama" / "wllama"
SDIST = ("llama_cpp_python-0.3.36.tar.gz", "llama-cpp-python==0.3.36",
         "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e")
SUITE = "sid"
MIRROR = "http://deb.debian.org/debian"
CHROOT_PACKAGES = ("emscripten", "libsimde-dev", "cmake", "make", "python3", "ca-certificates", "wabt")
# The versions the recipe was verified with (dpkg-query in the chroot). sid moves: a
# difference is printed in one line and recorded in builds.json, the build goes on.
TOOLCHAIN = {
    "emscripten": "6.0.5+dfsg+~1.41.5-2",
    "clang-21": "1:21.1.8-14",
    "lld-21": "1:21.1.8-14",
    "binaryen": "131-2",
    "nodejs": "24.22.2+dfsg+~cs24.19.2-1",
    "cmake": "4.3.4-1",
    "wabt": "1.0.42+dfsg+~cs1.0.39-2",
    "libsimde-dev": "0.8.4~rc3-5",
}
CPU_LOCK = "/tmp/offgrid-cpu.lock"


@dataclass(frozen=True)
class Variant:
    """One engine build: its id in builds.json and how it differs from the base recipe.

    Variants with the same `tree` share one CMake build tree: relaxed differs from simd in
    ggml-cpu's flags only, so after simd it recompiles ggml-cpu and links (about 3 min). The
    others (Memory64, the compat flavour) compile every file differently: trees of their own.
    """

    id: str
    label: str
    env: tuple[tuple[str, str], ...] = ()
    requires: tuple[str, ...] = ("jspi", "simd128")
    tree: str = "wasm32"
    compat: "Variant | None" = None  # its asyncify + wasm32 flavour, for browsers without JSPI

    @property
    def memory(self) -> str:
        """'wasm32' or 'memory64', from the processor it is compiled for (build-in-chroot.sh's PROC,
        wasm64 unless set); web/engine/build_select.js keeps models too large for wasm32 off it."""
        return "wasm32" if dict(self.env).get("PROC") == "wasm32" else "memory64"

    @property
    def max_memory(self) -> int:
        """Bytes its memory may grow to: 4 GiB for wasm32; for Memory64 what engine_patches links
        it with (and swap_glue lets wllama's worker make)."""
        return (4 if self.memory == "wasm32" else engine_patches.MEMORY64_MAX_GIB) * 2 ** 30


WASM32 = (("CMAKE_EXTRA", "-DWLLAMA_MEM64=OFF -DLLAMA_WASM_MEM64=OFF"), ("PROC", "wasm32"))
# wllama's compat flavour (Safari, and any browser without JSPI): asyncify instead of JSPI, JS
# exceptions.
SIMD_COMPAT = Variant("simd-compat", "simd, compat flavour (asyncify, wasm32)",
                      env=(("CMAKE_EXTRA", "-DWLLAMA_COMPAT=ON -DLLAMA_WASM_MEM64=OFF"), ("PROC", "wasm32")),
                      requires=("simd128",), tree="compat")
# JSPI with 32-bit memory: 10-25% faster than Memory64 here (Memory64 loads and stores are
# bounds-checked; bench/RESULTS.md), for models that fit in 4 GiB of wasm memory.
SIMD = Variant("simd", "simd (llama.cpp WASM SIMD kernels)", env=WASM32, compat=SIMD_COMPAT)
# Relaxed SIMD for our dot products only (wasm_dot_kernels.c: exact integer dot products, the same
# result on every engine). Not -ffp-contract=fast: with it clang fused multiply-adds all over
# ggml-cpu into f32x4.relaxed_madd and Chromium's greedy answers were garbage (2026-11-28).
RELAXED = Variant("relaxed", "relaxed (llama.cpp WASM SIMD kernels, relaxed-SIMD integer dot products)",
                  env=(*WASM32, ("CPU_CFLAGS", "-mrelaxed-simd")), requires=("jspi", "simd128", "relaxed_simd"))
# Memory64 (upstream wllama's JSPI build) linked to grow past 4 GiB: for a model too large for 32-bit memory.
SIMD64 = Variant("simd64", "simd64 (llama.cpp WASM SIMD kernels, Memory64 for large models)",
                 requires=("jspi", "memory64", "simd128"), tree="memory64")
VARIANTS = (SIMD, RELAXED, SIMD64)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def wllama_version() -> str:
    """@wllama/wllama's version, from package.json (its one owner)."""
    return json.loads((ROOT / "package.json").read_text())["dependencies"]["@wllama/wllama"]


def wllama_integrity() -> str:
    """@wllama/wllama's integrity from package-lock.json (what npm ci checked node_modules against)."""
    lock = json.loads((ROOT / "package-lock.json").read_text())
    entry = lock["packages"]["node_modules/@wllama/wllama"]
    return f"{entry['version']} {entry['integrity']}"


def engine_dir(cache: Path) -> Path:
    """Where the chroot, the sdist and the compiled builds live. Machine-wide for root: a build is
    keyed by all its inputs, so clones (CI's fresh one too) share one 40-minute compile."""
    if os.environ.get("OFFGRID_ENGINE_CACHE"):
        return Path(os.environ["OFFGRID_ENGINE_CACHE"])
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/cache/offgrid/engine")
    return cache / "engine"


def cache_key(variant: Variant) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({
        "wllama": wllama_integrity(), "sdist": SDIST[2], "suite": SUITE, "toolchain": TOOLCHAIN,
        "variant": [variant.id, list(variant.env)], "source_patch": SOURCE_PATCH,
    }, sort_keys=True).encode())
    for name in RECIPE_FILES:
        h.update(name.encode() + b"\0" + (RECIPE / name).read_bytes())
    return h.hexdigest()[:16]


def _why_no_toolchain() -> str:
    """'' when the chroot toolchain can be set up here, else the reason."""
    if platform.system() != "Linux" or not Path("/etc/debian_version").exists():
        return "not a Debian system"
    if os.geteuid() != 0:
        return "not root (mmdebstrap and chroot need root)"
    if not shutil.which("apt-get"):
        return "no apt-get"
    return ""


def _apt_install(packages: list[str], log) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    log(f"  installing {' '.join(packages)} (apt)")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *packages], check=True, env=env, stdout=subprocess.DEVNULL)


def _chroot(cache: Path, log) -> Path:
    """The sid chroot with emscripten, made once with mmdebstrap (about 1 min, 1.1 GB)."""
    root = engine_dir(cache) / SUITE
    if (root / "usr" / "bin" / "emcc").exists():
        return root
    if not shutil.which("mmdebstrap"):
        _apt_install(["mmdebstrap"], log)
    log(f"  making a Debian {SUITE} chroot with emscripten (mmdebstrap, about 1 min)")
    tmp = root.with_name(root.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    root.parent.mkdir(parents=True, exist_ok=True)  # mmdebstrap needs the parent to exist
    # The mirror's sid Release file can be expired: do not let apt refuse it.
    subprocess.run(["mmdebstrap", "--quiet", "--variant=apt", "--aptopt=Acquire::Check-Valid-Until \"false\"",
                    f"--include={','.join(CHROOT_PACKAGES)}", SUITE, str(tmp), MIRROR], check=True)
    tmp.rename(root)
    return root


def installed_versions(root: Path) -> dict[str, str]:
    out = subprocess.run(["chroot", str(root), "dpkg-query", "-W", "-f", "${Package}\t${Version}\n", *TOOLCHAIN],
                         capture_output=True, text=True).stdout
    return dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)


def _check_toolchain(root: Path, log) -> dict:
    have = installed_versions(root)
    differ = {k: [v, have.get(k, "missing")] for k, v in TOOLCHAIN.items() if have.get(k) != v}
    if differ:
        log("  NOTE: the chroot's toolchain differs from the recorded one (Debian sid moves): " +
            "; ".join(f"{k} {new} (recorded {old})" for k, (old, new) in differ.items()))
    return {"suite": SUITE, "installed": have, "recorded": TOOLCHAIN, "differs": differ}


def _sdist(cache: Path, log) -> Path:
    name, req, sha = SDIST
    path = engine_dir(cache) / "src" / name
    if not path.exists():
        log(f"  downloading {req} sdist (77 MB, PyPI)")
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["python3", "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                        req, "-d", str(path.parent)], check=True)
    if _sha256(path) != sha:
        path.unlink()
        raise SystemExit(f"{name}: sha256 mismatch (removed it; the next build downloads it again)")
    return path


def _sync_tree(new: Path, old: Path, keep: str) -> None:
    """Make `old` hold what `new` holds, writing only files whose bytes differ (make then rebuilds
    only what changed); `keep` (the build dir) is left alone."""
    for path in new.rglob("*"):
        rel = path.relative_to(new)
        dest = old / rel
        if path.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
        elif not dest.is_file() or dest.read_bytes() != path.read_bytes():
            shutil.copy2(path, dest)
    for path in sorted(old.rglob("*"), reverse=True):
        rel = path.relative_to(old)
        if rel.parts[0] != keep and not (new / rel).exists():
            if path.is_dir() and not path.is_symlink():
                path.rmdir()
            else:
                path.unlink()


def _sources(work: Path, sdist: Path) -> Path:
    """wllama's package with llama.cpp (from the sdist) next to its cpp/, plus the server-decision
    stub and our wasm kernels. Kept (with its build tree) while these inputs stay the same; when
    they change, only the files that differ are rewritten."""
    src = work / "wllama"
    stamp = work / "sources.sha256"
    want = hashlib.sha256(json.dumps([wllama_integrity(), SDIST[2], SOURCE_PATCH] + [
        _sha256(RECIPE / n) for n in (*SERVER_STUB, *KERNELS)]).encode()).hexdigest()
    shutil.copyfile(RECIPE / "build-in-chroot.sh", work / "build-in-chroot.sh")
    (work / "build-in-chroot.sh").chmod(0o755)
    if stamp.exists() and stamp.read_text() == want and src.exists():
        return src
    fresh = work / "wllama.new"
    shutil.rmtree(fresh, ignore_errors=True)
    shutil.copytree(WLLAMA_PKG, fresh, ignore=shutil.ignore_patterns("node_modules", "esm", "assets", "*.bin"))
    prefix = sdist.name.removesuffix(".tar.gz") + "/vendor/llama.cpp/"
    with tarfile.open(sdist) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix) and "/.git" not in m.name]
        for m in members:
            m.name = "llama.cpp/" + m.name[len(prefix):]
        tar.extractall(fresh, members=members, filter="data")
    # wllama 3.8.1 was built against llama.cpp b11364, which has tools/server/server-decision.*
    # (merged upstream 2026-10-02); the sdist's 0c1e570 (2026-10-01) lacks it: add a stub.
    for name in SERVER_STUB:
        shutil.copyfile(RECIPE / name, fresh / "llama.cpp" / "tools" / "server" / name)
    engine_patches.apply(fresh, RECIPE)
    if src.exists():
        _sync_tree(fresh, src, keep="out")
        shutil.rmtree(fresh)
    else:
        fresh.rename(src)
    stamp.write_text(want)
    return src


def _progress(name: str, make_log: Path, done: threading.Event, log, t0: float, expect: str) -> None:
    """One line every 30 s while make runs: its last [NN%], the elapsed time and `expect`."""
    while not done.wait(30):
        pct = ""
        if make_log.exists():
            hits = re.findall(r"^\[\s*(\d+)%\]", make_log.read_text(errors="replace"), re.M)
            pct = f"{hits[-1]}%" if hits else ""
        log(f"  compiling the {name} engine: {pct or 'configuring'} after {time.monotonic() - t0:.0f} s ({expect})")


def _compile(root: Path, variant: Variant, sdist: Path, log) -> Path:
    work = root / "build" / variant.tree
    work.mkdir(parents=True, exist_ok=True)
    src = _sources(work, sdist)
    (src / "out" / "make.log").unlink(missing_ok=True)  # the progress line reads this run's
    # A tree that was built before recompiles only what changed (another variant's flags, a patch).
    expect = ("rebuilding what changed in an existing tree" if (src / "out" / "CMakeCache.txt").exists()
              else "about 10 min on 2 cores, once")
    proc = root / "proc"
    mounted = False
    if not os.path.ismount(proc):
        # emcc and node look at /proc (CPU count, self); bind the host's for the build.
        mounted = subprocess.run(["mount", "--bind", "/proc", str(proc)]).returncode == 0
    env_args = [f"{k}={v}" for k, v in (("SRC", f"/build/{variant.tree}/wllama"), ("BUILD", "out"), *variant.env)]
    cmd = ["chroot", str(root), "env", *env_args, "bash", f"/build/{variant.tree}/build-in-chroot.sh"]
    # Compiles hold the machine's shared CPU lock (other builds and e2e runs wait), at low priority.
    if shutil.which("flock"):
        cmd = ["flock", CPU_LOCK, *cmd]
    cmd = ["nice", "-n", "10", *cmd]
    done = threading.Event()
    t0 = time.monotonic()
    ticker = threading.Thread(target=_progress, args=(variant.id, src / "out" / "make.log", done, log, t0, expect), daemon=True)
    ticker.start()
    try:
        subprocess.run(cmd, check=True)
    finally:
        done.set()
        if mounted:
            subprocess.run(["umount", str(proc)], check=False)
    log(f"  compiled the {variant.id} engine in {time.monotonic() - t0:.0f} s")
    return src / "out"


def objdump(root: Path | None, wasm: Path, *flags: str) -> str:
    """wasm-objdump's output for the wasm (flags: -d disassembly, -x -j Import imports).
    `root`: a chroot whose wabt to use (1.0.42 reads wasm64 tables), None: the host's."""
    if root is not None and (root / "usr" / "bin" / "wasm-objdump").exists():
        inside = root / "tmp" / "count.wasm"
        shutil.copyfile(wasm, inside)
        try:
            return subprocess.run(["chroot", str(root), "wasm-objdump", *flags, "/tmp/count.wasm"],
                                  capture_output=True, text=True).stdout
        finally:
            inside.unlink()
    return subprocess.run(["wasm-objdump", *flags, str(wasm)], capture_output=True, text=True).stdout


def kernel_count(root: Path | None, wasm: Path, op: str = "i32x4.dot_i16x8_s") -> int:
    """How often `op` occurs in the wasm's code, by default ggml's SIMD dot product."""
    return objdump(root, wasm, "-d").count(op)


def build(cache: Path, variant: Variant = SIMD, log=print) -> Path | None:
    """The cached build dir (wllama.js, wllama.wasm, build.json) of `variant`, or None when this
    machine cannot have the toolchain (then the site ships the stock engine only)."""
    out = engine_dir(cache) / cache_key(variant)
    if (out / "build.json").exists():
        return out
    why = _why_no_toolchain()
    if why:
        log(f"  ENGINE: cannot build the SIMD engine ({why}); the site ships the stock wllama engine only")
        return None
    t0 = time.monotonic()
    root = _chroot(cache, log)
    toolchain = _check_toolchain(root, log)
    sdist = _sdist(cache, log)
    built = _compile(root, variant, sdist, log)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in ("wllama.js", "wllama.wasm"):
        shutil.copyfile(built / name, tmp / name)
    info = {
        "variant": variant.id, "label": variant.label, "env": dict(variant.env), "toolchain": toolchain,
        "sources": {"wllama": wllama_integrity(), "llama-cpp-python sdist sha256": SDIST[2]},
        "build_seconds": round(time.monotonic() - t0), "wasm_bytes": (tmp / "wllama.wasm").stat().st_size,
        "dot_i16x8_s": kernel_count(root, tmp / "wllama.wasm"),
        "relaxed_dot": kernel_count(root, tmp / "wllama.wasm", "i32x4.relaxed_dot_i8x16_i7x16_add_s"),
        "relaxed_madd": kernel_count(root, tmp / "wllama.wasm", "f32x4.relaxed_madd"),
    }
    (tmp / "build.json").write_text(json.dumps(info, indent=1))
    tmp.rename(out)
    return out
