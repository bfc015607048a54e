"""How the engine build changes its sources: wllama's CMake project and the llama.cpp that the
llama-cpp-python sdist vendors (engine_build._sources applies these). Each patch asserts that the
upstream text it changes is there exactly once, so a new sdist or wllama fails loudly here
instead of building something else; tests/test_engine_build.py runs them on the pinned sources.
"""

from __future__ import annotations

import re
from pathlib import Path

# Bump when a patch here changes: it is in every engine cache key and the sources stamp.
SOURCE_PATCH = 7
QUANTS_C = Path("llama.cpp/ggml/src/ggml-cpu/arch/wasm/quants.c")
OPS_CPP = Path("llama.cpp/ggml/src/ggml-cpu/ops.cpp")
GGML_CPU_C = Path("llama.cpp/ggml/src/ggml-cpu/ggml-cpu.c")
GGML_CPU_CPP = Path("llama.cpp/ggml/src/ggml-cpu/ggml-cpu.cpp")
GGML_CPU_CMAKE = Path("llama.cpp/ggml/src/ggml-cpu/CMakeLists.txt")
# Our files as they are written into ggml-cpu/: the dot-product kernels (also spliced into
# quants.c) as a header for the q4_1 repack buffer type, which is compiled on its own.
KERNELS_H = "offgrid_wasm_dot_kernels.h"
REPACK_CPP = "offgrid_q4_1_repack.cpp"
# How much larger weights of a quantization are in memory once repacked (wasm_q4_1_repack.cpp:
# a q4_1 block's 20 bytes become 24, its scales as f32); builds.json says it as weight_growth and
# the memory budget counts it.
WEIGHT_GROWTH = {"Q4_1": 24 / 20}
# ggml's wasm dot products that return through ours (wasm_dot_kernels.c says why): the block types
# of their operands and the ggml type whose matrices get ours for 2 rows x 2 columns per call in
# prefill. q4_0 and q8_0 stay upstream's: ours were not faster (bench/wasm_kernels).
OUR_DOT_PRODUCTS = {"q4_1_q8_1": ("block_q4_1", "block_q8_1", "GGML_TYPE_Q4_1")}


def patch_quants(text: str, kernels: str) -> str:
    """llama.cpp's ggml-cpu/arch/wasm/quants.c with our kernels ahead of its first dot product,
    each of OUR_DOT_PRODUCTS returning through ours where the build has SIMD128, and activations
    rounded to the nearest int8 when quantized to q8_0/q8_1."""
    # Upstream's wasm quantize_row_q8_0/q8_1 truncate toward zero (error up to 1 step, biased);
    # the reference code, the AVX2/NEON paths and wasm's own q8_K round to nearest.
    truncating = "const v128_t vi = wasm_i32x4_trunc_sat_f32x4(v);"
    assert text.count(truncating) == 2, "quants.c: the q8_0/q8_1 quantizers changed"
    text = text.replace(truncating, "const v128_t vi = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(v));")
    first = re.search(r"^void ggml_vec_dot_", text, re.M)
    assert first, "quants.c has no ggml_vec_dot_ function"
    text = text[:first.start()] + kernels + "\n" + text[first.start():]
    for name, (x_type, y_type, _) in OUR_DOT_PRODUCTS.items():
        head = re.search(rf"^void ggml_vec_dot_{name}\(int n, float \* GGML_RESTRICT s, size_t bs, "
                         r"const void \* GGML_RESTRICT vx, size_t bx, const void \* GGML_RESTRICT vy, size_t by, "
                         r"int nrc\) {\n", text, re.M)
        assert head, f"quants.c: ggml_vec_dot_{name} not found or its signature changed"
        hook = (f"#if defined(__wasm_simd128__)\n"
                f"    if (nrc == 2) {{\n"
                f"        offgrid_vec_dot_{name}_2x2(n, s, bs, (const {x_type} *) vx, "
                f"(const {x_type} *) ((const char *) vx + bx),\n"
                f"            (const {y_type} *) vy, (const {y_type} *) ((const char *) vy + by));\n"
                f"        return;\n    }}\n"
                f"    offgrid_vec_dot_{name}(n, s, (const {x_type} *) vx, (const {y_type} *) vy);\n"
                f"    return;\n#endif\n")
        text = text[:head.end()] + hook + text[head.end():]
    return text


MUL_MAT_CHUNK = """        if ((nr0 % 2 != 0) || (ne11 % 2 != 0) || ((ir0_end - ir0_start) % 2 != 0) || ((ir1_end - ir1_start) % 2 != 0)) {
            num_rows_per_vec_dot = 1;
        }
        ggml_compute_forward_mul_mat_one_chunk(params, dst, src0->type, num_rows_per_vec_dot, ir0_start, ir0_end, ir1_start, ir1_end);
"""
# An odd number of columns (prompt tokens) in a plain matrix: the 2x2 calls for all but the last
# column, single ones for it (upstream falls back to single calls for the whole product).
MUL_MAT_ODD = """#if defined(__wasm_simd128__)
        if (num_rows_per_vec_dot == 2 && nr0 % 2 == 0 && (ir0_end - ir0_start) % 2 == 0 && ne12 * ne13 == 1 &&
            (ir1_end - ir1_start) % 2 != 0) {
            if (ir1_end - ir1_start > 1) {
                ggml_compute_forward_mul_mat_one_chunk(params, dst, src0->type, 2, ir0_start, ir0_end, ir1_start, ir1_end - 1);
            }
            ggml_compute_forward_mul_mat_one_chunk(params, dst, src0->type, 1, ir0_start, ir0_end, ir1_end - 1, ir1_end);
        } else
#endif
        {
"""


def patch_ggml_cpu(text: str) -> str:
    """llama.cpp's ggml-cpu/ggml-cpu.c asking our dot products for 2 rows x 2 columns per call
    (`nrows = 2`, as ARM's i8mm build does) where the build has SIMD128, also when the number of
    columns is odd: prefill then unpacks each weight block once for two columns
    (wasm_dot_kernels.c)."""
    arm = "#if defined (__ARM_FEATURE_MATMUL_INT8)\n        .nrows                    = 2,"
    for _, _, ggml_type in OUR_DOT_PRODUCTS.values():
        start = text.index(f"    [{ggml_type}] = {{\n")
        end = text.index("\n    },\n", start)
        entry = text[start:end]
        assert entry.count(arm) == 1, f"ggml-cpu.c: the {ggml_type} traits changed"
        text = text[:start] + entry.replace(arm, arm.replace(")", ") || defined (__wasm_simd128__)", 1)) + text[end:]
    assert text.count(MUL_MAT_CHUNK) == 1, "ggml-cpu.c: ggml_compute_forward_mul_mat's chunk loop changed"
    return text.replace(MUL_MAT_CHUNK, MUL_MAT_ODD + "\n".join(
        "    " + line if line else line for line in MUL_MAT_CHUNK.split("\n")) + "        }\n")


FLASH_ATTN_V = """                if (v_to_float) {
                    v_to_float(v_data, V32, DV);
                    ggml_vec_mad_f32(DV, VKQ32, V32, vs);
                }"""
FLASH_ATTN_TYPES = "    ggml_to_float_t   const v_to_float     = ggml_get_type_traits(v->type)->to_float;\n"
FLASH_ATTN_LOOP = """        for (int64_t ic = ic_start; ic < ic_end; ++ic) {
            const float mv = mp ? slope*GGML_CPU_FP16_TO_FP32(mp[ic]) : 0.0f;
"""
FLASH_ATTN_TILE = """            if (fa_tile4 && ic + 3 < ic_end &&
                offgrid_fa_q8_0_tile4(DK, DV, (const char *) k->data + ik2*nbk2 + ik3*nbk3, nbk1,
                                      (const char *) v->data + iv2*nbv2 + iv3*nbv3, nbv1, Q_q, mp, slope, scale, ic,
                                      &M, &S, VKQ32)) {
                ic += 3;
                continue;
            }
"""


def patch_ops(text: str, code: str) -> str:
    """llama.cpp's ggml-cpu/ops.cpp with flash attention's loop over cached positions taking four
    at a time, and a single q8_0 V step, through ours (wasm_flash_attn.cpp says why)."""
    head = "static void ggml_compute_forward_flash_attn_ext_f16_one_chunk("
    for part in (head, FLASH_ATTN_V, FLASH_ATTN_TYPES, FLASH_ATTN_LOOP):
        assert text.count(part) == 1, "ops.cpp: flash attention changed"
    text = text.replace(head, code + "\n" + head)
    text = text.replace(FLASH_ATTN_TYPES, FLASH_ATTN_TYPES + "    const bool fa_tile4 = OFFGRID_FA_TILE4(k->type, v->type, k_vec_dot_type, logit_softcap);\n")
    head_line, mv_line = FLASH_ATTN_LOOP.splitlines(keepends=True)
    text = text.replace(FLASH_ATTN_LOOP, head_line + FLASH_ATTN_TILE + mv_line)
    return text.replace(FLASH_ATTN_V, """                if (OFFGRID_FUSED_V_Q8_0(v->type)) {
                    offgrid_vec_mad_q8_0(DV, VKQ32, v_data, vs);
                } else """ + FLASH_ATTN_V.lstrip())


EXTRA_BUFTS_END = """#endif

        return bufts;
    }();
"""
EXTRA_BUFTS_FN = "std::vector<ggml_backend_buffer_type_t> & ggml_backend_cpu_get_extra_buffer_types() {\n"
OUR_BUFT = """#if defined(__wasm_simd128__)
        bufts.push_back(offgrid_q4_1_buffer_type());
#endif
"""


def patch_ggml_cpu_cpp(text: str) -> str:
    """llama.cpp's ggml-cpu/ggml-cpu.cpp offering our q4_1 buffer type (wasm_q4_1_repack.cpp)
    among the CPU's extra buffer types where the build has SIMD128, after upstream's."""
    assert text.count(EXTRA_BUFTS_FN) == 1 and text.count(EXTRA_BUFTS_END) == 1, \
        "ggml-cpu.cpp: the extra buffer types changed"
    text = text.replace(EXTRA_BUFTS_FN, "#if defined(__wasm_simd128__)\n"
                        "ggml_backend_buffer_type_t offgrid_q4_1_buffer_type(void);\n#endif\n\n" + EXTRA_BUFTS_FN)
    return text.replace(EXTRA_BUFTS_END, "#endif\n\n" + OUR_BUFT + EXTRA_BUFTS_END.removeprefix("#endif\n"))


CPU_SOURCE = "        ggml-cpu/repack.cpp\n"


def patch_cpu_cmake(text: str) -> str:
    """ggml-cpu's CMakeLists.txt compiling our repack file with upstream's."""
    assert text.count(CPU_SOURCE) == 1, "ggml-cpu's CMakeLists.txt: its source list changed"
    return text.replace(CPU_SOURCE, CPU_SOURCE + f"        ggml-cpu/{REPACK_CPP}\n")


JSPI_FLAGS = """else()
    list(APPEND WLLAMA_COMPILE_OPTIONS
        -sMEMORY64=1
        -fwasm-exceptions
    )
    list(APPEND WLLAMA_LINK_OPTIONS
        -sMEMORY64=1
"""


# The most memory a Memory64 build may grow to: V8's limit for a 64-bit memory (wasm32 stops at 4).
MEMORY64_MAX_GIB = 16
MAX_MEMORY = "    -sMAXIMUM_MEMORY=4096MB\n"
MEM64_OPTION = f"""option(WLLAMA_MEM64 "Offgrid: Memory64 in the JSPI build" ON)
set(WLLAMA_MEM64_FLAG "")
set(WLLAMA_MAX_MEMORY 4096MB)
if (WLLAMA_MEM64 AND NOT WLLAMA_COMPAT)
    set(WLLAMA_MEM64_FLAG -sMEMORY64=1)
    set(WLLAMA_MAX_MEMORY {MEMORY64_MAX_GIB}GB)
endif()
"""


def patch_cmake(text: str) -> str:
    """wllama's CMakeLists.txt with Memory64 as an option (WLLAMA_MEM64, on by default) for its
    JSPI build: upstream has a JSPI build only with Memory64, and the wasm32 one runs faster
    (every Memory64 load and store is bounds-checked; bench/RESULTS.md). A Memory64 build may grow
    to MEMORY64_MAX_GIB (upstream stops every build at 4 GiB, where Memory64 gains nothing)."""
    assert text.count(JSPI_FLAGS) == 1, "wllama's CMakeLists.txt: the JSPI build's flags changed"
    assert text.count(MAX_MEMORY) == 1, "wllama's CMakeLists.txt: the maximum memory flag changed"
    option = "option(WLLAMA_TEST_BACKEND"
    assert text.count(option) == 1
    text = text.replace(MAX_MEMORY, MAX_MEMORY.replace("4096MB", "${WLLAMA_MAX_MEMORY}"))
    text = text.replace(JSPI_FLAGS, JSPI_FLAGS.replace("-sMEMORY64=1", "${WLLAMA_MEM64_FLAG}"))
    return text.replace(option, MEM64_OPTION + option)


def apply(tree: Path, recipe: Path) -> None:
    """All of the above on `tree` (wllama's package with llama.cpp/ next to its cpp/), with our
    kernels from `recipe`."""
    kernels = (recipe / "wasm_dot_kernels.c").read_text()
    quants = tree / QUANTS_C
    quants.write_text(patch_quants(quants.read_text(), kernels))
    (tree / GGML_CPU_CPP).with_name(KERNELS_H).write_text(kernels)
    (tree / GGML_CPU_CPP).with_name(REPACK_CPP).write_text((recipe / "wasm_q4_1_repack.cpp").read_text())
    for path, patch in ((GGML_CPU_CPP, patch_ggml_cpu_cpp), (GGML_CPU_CMAKE, patch_cpu_cmake)):
        (tree / path).write_text(patch((tree / path).read_text()))
    ops = tree / OPS_CPP
    ops.write_text(patch_ops(ops.read_text(), (recipe / "wasm_flash_attn.cpp").read_text()))
    cpu = tree / GGML_CPU_C
    cpu.write_text(patch_ggml_cpu(cpu.read_text()))
    cmake = tree / "CMakeLists.txt"
    cmake.write_text(patch_cmake(cmake.read_text()))
