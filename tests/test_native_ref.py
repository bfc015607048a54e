"""The native llama.cpp reference's build flags (py/offgrid_dev/native_ref.py): GGML_NATIVE off
and AMX off on x86, this CPU's instruction sets listed; llama.cpp's default elsewhere."""

from __future__ import annotations

import platform
import re
import tarfile
from pathlib import Path

import pytest

from offgrid_dev import native_ref
from offgrid_dev.native_ref import cmake_args, cpu_flags

# /proc/cpuinfo "flags" of a Sapphire Rapids VM (AMX), trimmed to what matters and some noise.
SAPPHIRE_RAPIDS = frozenset(
    "fpu sse sse2 ssse3 sse4_1 sse4_2 avx avx2 fma f16c bmi1 bmi2 avx_vnni avx512f avx512dq avx512cd "
    "avx512bw avx512vl avx512ifma avx512vbmi avx512_vbmi2 avx512_vnni avx512_bitalg avx512_vpopcntdq "
    "avx512_bf16 avx512_fp16 amx_bf16 amx_tile amx_int8 aes sha_ni".split())
HASWELL = frozenset("fpu sse sse2 ssse3 sse4_1 sse4_2 avx avx2 fma f16c bmi1 bmi2 aes".split())
NEOVERSE = frozenset("fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp".split())


def _opts(args: list[str]) -> dict[str, str]:
    return dict(a.removeprefix("-D").split("=", 1) for a in args)


def test_amx_cpu_gets_native_off_amx_off_and_avx512():
    opts = _opts(cmake_args(SAPPHIRE_RAPIDS, "x86_64"))
    assert opts["GGML_NATIVE"] == "OFF"  # -march=native would turn AMX on whatever GGML_AMX_* says
    assert opts["GGML_AMX_TILE"] == opts["GGML_AMX_INT8"] == opts["GGML_AMX_BF16"] == "OFF"
    for opt in ("GGML_SSE42", "GGML_AVX", "GGML_AVX2", "GGML_FMA", "GGML_F16C", "GGML_BMI2", "GGML_AVX_VNNI",
                "GGML_AVX512", "GGML_AVX512_VBMI", "GGML_AVX512_VNNI", "GGML_AVX512_BF16"):
        assert opts[opt] == "ON", opt


def test_avx2_only_cpu_gets_every_avx512_option_off():
    opts = _opts(cmake_args(HASWELL, "x86_64"))
    assert opts["GGML_NATIVE"] == "OFF"
    assert {o for o, v in opts.items() if v == "ON"} == {
        "GGML_SSE42", "GGML_AVX", "GGML_AVX2", "GGML_FMA", "GGML_F16C", "GGML_BMI2"}


def test_avx_only_cpu_turns_off_what_ggml_would_default_on():
    # With GGML_NATIVE=OFF ggml defaults AVX2/FMA/F16C/BMI2 ON: they must be said OFF here.
    opts = _opts(cmake_args(frozenset("sse4_2 avx".split()), "x86_64"))
    assert opts["GGML_AVX"] == "ON" and opts["GGML_AVX2"] == opts["GGML_FMA"] == opts["GGML_BMI2"] == "OFF"


def test_arm_or_unknown_cpu_keeps_llama_cpp_defaults():
    assert cmake_args(NEOVERSE, "aarch64") == []
    assert cmake_args(SAPPHIRE_RAPIDS, "riscv64") == []
    assert cmake_args(frozenset(), "x86_64") == []  # no /proc/cpuinfo: nothing to list


def test_cpuinfo_parsing():
    x86 = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu avx2 amx_tile\nbugs\t\t: spectre_v1\n"
    assert cpu_flags(x86) == {"fpu", "avx2", "amx_tile"}
    arm = "processor\t: 0\nBogoMIPS\t: 243.75\nFeatures\t: fp asimd evtstrm\nCPU implementer\t: 0x41\n"
    assert cpu_flags(arm) == {"fp", "asimd", "evtstrm"}
    assert cpu_flags("") == frozenset()


def test_version_comes_from_pyproject():
    assert re.fullmatch(r"\d+\.\d+\.\d+", native_ref.pinned_version())


def _sdist() -> Path | None:
    from offgrid_dev.engine_build import SDIST, engine_dir

    path = engine_dir(Path(native_ref.ROOT / ".cache")) / "src" / SDIST[0]
    return path if path.is_file() else None


@pytest.mark.skipif(_sdist() is None, reason="the llama-cpp-python sdist is not in the engine cache yet")
def test_every_option_exists_in_the_vendored_llama_cpp():
    """A renamed ggml option would be silently ignored by CMake (and then default ON or OFF)."""
    sdist = _sdist()
    name = f"{sdist.name.removesuffix('.tar.gz')}/vendor/llama.cpp/ggml/CMakeLists.txt"
    with tarfile.open(sdist) as tar:
        text = tar.extractfile(name).read().decode()
    declared = set(re.findall(r"option\((GGML_\w+)", text))
    assert set(_opts(cmake_args(SAPPHIRE_RAPIDS, "x86_64"))) <= declared


def test_installed_reference_was_built_for_this_cpu():
    if native_ref.installed_version() is None:
        pytest.skip("llama-cpp-python is not installed (python3 build.py test installs it)")
    record = native_ref.installed_record()
    assert record is not None, "llama_cpp has no offgrid_build.json: run python3 -m offgrid_dev.native_ref"
    want = cmake_args(native_ref.read_cpu_flags(), platform.machine())
    assert record["cmake_args"] == want
    assert record["version"] == native_ref.installed_version() == native_ref.pinned_version()
    flags = native_ref.build_flags()
    assert flags["matches_this_cpu"] and flags["cmake_args"] == want
    if want:  # x86: what llama.cpp says it was compiled for follows the flags, and has no AMX
        info = flags["system_info"]
        assert "AMX_INT8 = 1" not in info, info
        assert ("AVX2 = 1" in info) == ("-DGGML_AVX2=ON" in want), info
        assert ("AVX512 = 1" in info) == ("-DGGML_AVX512=ON" in want), info
