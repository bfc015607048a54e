"""The native llama.cpp reference (llama-cpp-python) that tests and benchmarks compare
the browser engine against, built from source for this CPU, but never with Intel AMX.

Why not llama.cpp's default build: GGML_NATIVE=ON compiles with -march=native, which on a
CPU advertising AMX (amx_tile/amx_int8/amx_bf16) also compiles in ggml's AMX backend, and
that segfaults on the first token in our VMs. GGML_AMX_*=OFF does not help while
-march=native is there. So on x86 the build is GGML_NATIVE=OFF with every instruction set
option ggml has set explicitly from /proc/cpuinfo (ON where the CPU has it, OFF otherwise),
and AMX off. Elsewhere (aarch64, ...) llama.cpp's default stays.

The flags a reference was built with are recorded next to the installed package
(llama_cpp/offgrid_build.json); `ensure()` rebuilds when that record is missing or says
something else, so an old GGML_NATIVE build, or a virtualenv moved to another CPU, is fixed.

    python3 -m offgrid_dev.native_ref          build if needed, then print what is installed
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tomllib
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "llama-cpp-python"
RECORD = "offgrid_build.json"  # in the installed llama_cpp/ folder

# ggml's x86 options (vendor/llama.cpp/ggml/CMakeLists.txt and ggml/src/ggml-cpu/CMakeLists.txt
# in the 0.3.36 sdist) and the /proc/cpuinfo flags each one needs. With GGML_NATIVE=OFF on a
# non-cross build ggml turns SSE42/AVX/AVX2/BMI2/FMA/F16C ON by default, so every option is
# given explicitly: an AVX-only CPU must not get AVX2 code.
X86_OPTIONS: dict[str, tuple[str, ...]] = {
    "GGML_SSE42": ("sse4_2",),
    "GGML_AVX": ("avx",),
    "GGML_AVX2": ("avx2",),
    "GGML_FMA": ("fma",),
    "GGML_F16C": ("f16c",),
    "GGML_BMI2": ("bmi2",),
    "GGML_AVX_VNNI": ("avx_vnni",),
    # GGML_AVX512 compiles with -mavx512f -mavx512cd -mavx512vl -mavx512dq -mavx512bw: all five.
    "GGML_AVX512": ("avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"),
    # The AVX-512 extensions are only used on top of GGML_AVX512.
    "GGML_AVX512_VBMI": ("avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw", "avx512vbmi"),
    "GGML_AVX512_VNNI": ("avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw", "avx512_vnni"),
    "GGML_AVX512_BF16": ("avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw", "avx512_bf16"),
}
# Off whatever the CPU says: the AMX backend is what crashes.
AMX_OPTIONS = ("GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AMX_BF16")
X86_MACHINES = {"x86_64", "amd64", "i386", "i686"}


def cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo text ("flags" on x86, "Features" on ARM)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def read_cpu_flags(path: str = "/proc/cpuinfo") -> frozenset[str]:
    try:
        return cpu_flags(Path(path).read_text(errors="replace"))
    except OSError:  # not Linux: nothing known, so llama.cpp's default build (see cmake_args)
        return frozenset()


def cmake_args(flags: frozenset[str] | set[str], machine: str) -> list[str]:
    """CMAKE_ARGS for llama-cpp-python on a CPU with these /proc/cpuinfo flags.

    x86 with known flags: GGML_NATIVE=OFF, each ggml instruction set option ON or OFF as
    the CPU has it, AMX OFF. Anything else (ARM, no flags read): [] = llama.cpp's default."""
    if machine.lower() not in X86_MACHINES or not flags:
        return []
    args = ["-DGGML_NATIVE=OFF"]
    args += [f"-D{opt}={'ON' if all(f in flags for f in need) else 'OFF'}" for opt, need in X86_OPTIONS.items()]
    args += [f"-D{opt}=OFF" for opt in AMX_OPTIONS]
    return args


def this_machine_args() -> list[str]:
    return cmake_args(read_cpu_flags(), platform.machine())


def pinned_version(pyproject: Path = ROOT / "pyproject.toml") -> str:
    """The llama-cpp-python version pyproject.toml's test extra pins (the one place it is written)."""
    extras = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]
    for req in (r for reqs in extras.values() for r in reqs):
        m = re.fullmatch(rf"\s*{PACKAGE}\s*==\s*([\w.]+)\s*", req)
        if m:
            return m.group(1)
    raise LookupError(f"{pyproject} pins no {PACKAGE}==<version>")


def installed_version() -> str | None:
    importlib.invalidate_caches()  # pip may just have changed site-packages under this process
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None


def _record_path() -> Path | None:
    """llama_cpp/offgrid_build.json of the installed package (found without importing it)."""
    if installed_version() is None:
        return None
    pkg = Path(importlib.metadata.distribution(PACKAGE).locate_file("llama_cpp"))
    return pkg / RECORD if pkg.is_dir() else None


def installed_record() -> dict | None:
    path = _record_path()
    try:
        return json.loads(path.read_text()) if path else None
    except (OSError, ValueError):
        return None


def _source(version: str) -> str:
    """The engine build's cached sdist when it is this version and its sha256 is right (the
    same llama.cpp bytes as the SIMD engine, no download); else the pinned requirement."""
    try:
        from offgrid_dev.engine_build import SDIST, engine_dir

        name, _req, sha = SDIST
        path = engine_dir(Path(os.environ.get("OFFGRID_CACHE", ROOT / ".cache"))) / "src" / name
        if name == f"llama_cpp_python-{version}.tar.gz" and path.is_file() \
                and hashlib.sha256(path.read_bytes()).hexdigest() == sha:
            return str(path)
    except (ImportError, OSError):
        pass
    return f"{PACKAGE}=={version}"


def ensure(log=print) -> dict:
    """Install the pinned llama-cpp-python built with this CPU's CMAKE_ARGS unless it already
    is (per its record). Returns the record."""
    version = pinned_version()
    args = this_machine_args()
    have_version, have = installed_version(), installed_record()
    if have_version == version and have and have.get("version") == version and have.get("cmake_args") == args:
        return have
    why = ("not installed" if have_version is None
           else f"{have_version} installed, {version} pinned" if have_version != version
           else "installed without a record of its build flags (e.g. llama.cpp's GGML_NATIVE default)" if not have
           else f"built with other flags ({' '.join(have.get('cmake_args') or []) or 'llama.cpp defaults'})")
    reason = ("GGML_NATIVE=OFF and this CPU's instruction sets listed, AMX off (-march=native "
              "turns on ggml's AMX backend, which segfaults in our VMs)" if args else
              "llama.cpp's default flags (not x86, or no /proc/cpuinfo flags)")
    log(f"building {PACKAGE} {version} from source (native reference; minutes) with "
        f"CMAKE_ARGS='{' '.join(args)}': {reason}; because it is {why}")
    sys.stdout.flush()  # before pip's own output
    nice = ["nice", "-n", "10"] if shutil.which("nice") else []  # tests and engine compiles share the CPU
    pip = [*nice, sys.executable, "-m", "pip"]
    old = _record_path()
    if old and old.exists():
        old.unlink()  # a failed build below must not leave a record that vouches for the old library
    if have_version is not None:
        subprocess.run([*pip, "uninstall", "-y", "-q", PACKAGE], check=True)
    source = _source(version)
    # --no-binary + --no-cache-dir: never a prebuilt wheel nor one pip cached from other flags.
    subprocess.run([*pip, "install", "-q", "--no-cache-dir", "--no-binary", PACKAGE, source],
                   check=True, env={**os.environ, "CMAKE_ARGS": " ".join(args)})
    record = {"version": version, "cmake_args": args, "machine": platform.machine(),
              "cpu_flags": sorted(f for f in read_cpu_flags() if f.startswith(("sse", "avx", "amx", "fma", "f16c", "bmi"))),
              "source": os.path.basename(source), "reason": reason,
              "built": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    path = _record_path()
    if path is None:
        raise RuntimeError(f"{PACKAGE} {version} was installed but its llama_cpp folder is not found")
    path.write_text(json.dumps(record, indent=1) + "\n")
    return record


def build_flags(system_info: bool = True) -> dict:
    """What the installed reference was built with: its version, the recorded CMAKE_ARGS
    (None when there is no record), whether they are what this CPU gives now, and llama.cpp's
    own llama_print_system_info() (the instruction sets it was compiled for)."""
    record = installed_record()
    out: dict = {"version": installed_version(), "cmake_args": record.get("cmake_args") if record else None,
                 "matches_this_cpu": bool(record) and record.get("cmake_args") == this_machine_args()}
    if system_info and out["version"]:
        try:
            import llama_cpp

            out["system_info"] = llama_cpp.llama_print_system_info().decode(errors="replace").strip()
        except (ImportError, OSError, AttributeError) as exc:
            out["system_info"] = f"unavailable: {type(exc).__name__}: {exc}"
    return out


def describe(flags: dict | None = None) -> str:
    """build_flags() in one line, for reports and assertion messages."""
    f = build_flags() if flags is None else flags
    args = "no build record" if f.get("cmake_args") is None else (" ".join(f["cmake_args"]) or "llama.cpp defaults")
    return f"{PACKAGE} {f.get('version')} [{args}] {f.get('system_info', '')}".strip()


if __name__ == "__main__":
    ensure()
    print(json.dumps(build_flags(), indent=1))
