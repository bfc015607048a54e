"""The engine builds the site carries (issue 11): builds.json, the SIMD kernels in the
served wasm, and the build cache (a second build compiles nothing, asks nothing)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from offgrid_dev import engine_build, engine_patches, engine_site

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache"
KEYS = {"id", "label", "module", "wasm", "compat", "webgpu", "simd_kernels", "requires", "memory"}


def _builds(dist: Path) -> dict:
    return json.loads((dist / "engine" / "builds.json").read_text())


def _objdump() -> Path | None:
    """The chroot's wabt (1.0.42 reads wasm64 tables), else the host's, else None."""
    root = engine_build.engine_dir(CACHE) / engine_build.SUITE
    if (root / "usr" / "bin" / "wasm-objdump").exists():
        return root
    return Path("/") if shutil.which("wasm-objdump") else None


def _require_simd(doc: dict) -> dict:
    """The simd build. Without it the test fails, unless this machine cannot have the toolchain
    at all (not Debian, not root): CI is Debian + root, so a silent fallback fails there."""
    simd = next((b for b in doc["builds"] if b["id"] == "simd"), None)
    if simd is None:
        why = engine_build._why_no_toolchain()
        if why:
            pytest.skip(f"no SIMD engine: {why} (the build shipped the stock engine only)")
        pytest.fail("builds.json has no simd build although this machine can build it: see the build's ENGINE line")
    return simd


def test_builds_json_follows_the_contract(dist):
    doc = _builds(dist)
    ids = [b["id"] for b in doc["builds"]]
    assert ids[0] == "stock" and len(ids) == len(set(ids))
    assert doc["builds"][0] == engine_site.STOCK
    assert doc["default_cpu"] in ids
    for b in doc["builds"]:
        assert KEYS <= b.keys(), b["id"]
        assert (dist / b["module"]).is_file() and (dist / b["wasm"]).is_file(), b["id"]
        for path in (b["compat"] or {}).values():
            assert (dist / path).is_file()
    simd = _require_simd(doc)
    assert simd["module"] == "engine/simd/index.js" and simd["wasm"] == "engine/simd/wasm/wllama.wasm"
    assert simd["simd_kernels"] is True and simd["webgpu"] is False and "simd128" in simd["requires"]
    assert doc["default_cpu"] == "simd"
    # 32-bit memory where the model fits, Memory64 for larger ones (web/engine/build_select.js chooses).
    assert {b["id"]: b["memory"] for b in doc["builds"]} == {
        "stock": "memory64", "simd": "wasm32", "relaxed": "wasm32", "simd64": "memory64"}
    # The toolchain that made it, against the recorded versions.
    assert simd["toolchain"]["recorded"] == engine_build.TOOLCHAIN
    assert set(simd["toolchain"]["installed"]) == set(engine_build.TOOLCHAIN)


def _count(wasm: Path, op: str = "i32x4.dot_i16x8_s") -> int:
    root = _objdump()
    if root is None:
        pytest.fail("no wasm-objdump (apt-get install wabt) to count the SIMD kernels")
    return engine_build.kernel_count(None if root == Path("/") else root, wasm, op)


def test_served_simd_wasm_has_the_dot_product_kernels_and_stock_has_none(dist):
    simd = _require_simd(_builds(dist))
    served = dist / simd["wasm"]
    n = _count(served)
    assert n > 0, "the SIMD build's wasm has no i32x4.dot_i16x8_s: ggml-cpu built its generic code"
    assert n == simd["dot_i16x8_s"]
    # Its compat flavour (asyncify, wasm32: Safari) has them too.
    assert simd["compat"], "the simd build has no compat flavour"
    compat = dist / simd["compat"]["wasm"]
    assert _count(compat) == simd["compat_info"]["dot_i16x8_s"] > 0
    # The counter can say 0: the stock wasm has no SIMD kernels.
    assert _count(dist / "vendor" / "wllama" / "wasm" / "wllama.wasm") == 0
    # The served bundle runs the new glue: it is not the stock index.js.
    assert (dist / simd["module"]).read_bytes() != (dist / "vendor" / "wllama" / "index.js").read_bytes()


def test_each_build_has_the_memory_it_says_and_its_worker_code_knows_it(dist):
    """A wasm32 JSPI build imports a 32-bit memory and its wllama bundle treats pointers as
    numbers (swap_glue.mjs --wasm32); a Memory64 one imports an i64 memory that may grow past
    4 GiB, and its bundle makes one that large."""
    _require_simd(_builds(dist))
    root = _objdump()
    if root is None:
        pytest.fail("no wasm-objdump (apt-get install wabt)")
    for b in _builds(dist)["builds"]:
        imports = engine_build.objdump(None if root == Path("/") else root, dist / b["wasm"], "-x", "-j", "Import")
        memory = [line for line in imports.splitlines() if "memory[0]" in line]
        assert len(memory) == 1, (b["id"], imports[:500])
        assert ("i64" in memory[0]) == (b["memory"] == "memory64"), (b["id"], memory)
        # It may grow to what builds.json says (selection and the memory budget go by that).
        assert f" max={b['max_memory'] // 65536} " in memory[0] + " ", (b["id"], memory)
        module = (dist / b["module"]).read_text()
        marked = "isCompat = true; /* Offgrid: a wasm32 JSPI build */" in module
        assert marked == (b["memory"] == "wasm32"), b["id"]
        # wllama's worker makes the memory itself: as large as the build may grow.
        if b["memory"] == "memory64" and b["id"] != "stock":
            assert f"let maxBytes = {b['max_memory'] // 2 ** 30} * 1024 * 1024 * 1024;" in module, b["id"]
    simd64 = next((b for b in _builds(dist)["builds"] if b["id"] == "simd64"), None)
    assert simd64 is not None and simd64["max_memory"] == engine_patches.MEMORY64_MAX_GIB * 2 ** 30 > 4 * 2 ** 30


def test_wllama_cmake_gets_memory64_as_an_option():
    text = (engine_build.WLLAMA_PKG / "CMakeLists.txt").read_text()
    out = engine_patches.patch_cmake(text)
    assert out.index(engine_patches.MEM64_OPTION) < out.index("if (WLLAMA_COMPAT)")
    # Both places of the JSPI build take the flag from the option; nothing else changes.
    assert out.count("-sMEMORY64=1") == 1 and out.count("        ${WLLAMA_MEM64_FLAG}\n") == 2
    # The maximum memory from the option too: 16 GiB with Memory64 (not in the compat flavour).
    assert out.count("    -sMAXIMUM_MEMORY=${WLLAMA_MAX_MEMORY}\n") == 1 and "-sMAXIMUM_MEMORY=4096MB" not in out
    assert f"set(WLLAMA_MAX_MEMORY {engine_patches.MEMORY64_MAX_GIB}GB)" in engine_patches.MEM64_OPTION
    assert "if (WLLAMA_MEM64 AND NOT WLLAMA_COMPAT)" in engine_patches.MEM64_OPTION
    assert (out.replace("        ${WLLAMA_MEM64_FLAG}\n", "        -sMEMORY64=1\n").replace(engine_patches.MEM64_OPTION, "")
            .replace("${WLLAMA_MAX_MEMORY}", "4096MB")) == text


def test_the_relaxed_build_has_relaxed_dot_products_and_no_fused_float_ops(dist):
    """Relaxed SIMD only in our integer dot products (exact on every engine), never as
    f32x4.relaxed_madd (fused multiply-adds made Chromium's answers garbage)."""
    simd = _require_simd(_builds(dist))
    relaxed = next((b for b in _builds(dist)["builds"] if b["id"] == "relaxed"), None)
    assert relaxed is not None, "the site has no relaxed build"
    assert "relaxed_simd" in relaxed["requires"] and relaxed["compat"] is None
    wasm = dist / relaxed["wasm"]
    n = _count(wasm, "i32x4.relaxed_dot_i8x16_i7x16_add_s")
    assert n > 0 and n == relaxed["relaxed_dot"]
    assert _count(wasm, "f32x4.relaxed_madd") == 0 and _count(wasm, "f32x4.relaxed_nmadd") == 0
    # Upstream's other kernels are there too; the simd build has no relaxed op at all.
    assert _count(wasm) > 0
    assert _count(dist / simd["wasm"], "relaxed_") == 0


def _sdist_file(rel: Path) -> str:
    import tarfile

    sdist = engine_build.engine_dir(CACHE) / "src" / engine_build.SDIST[0]
    if not sdist.exists():
        pytest.skip("the llama-cpp-python sdist is not cached here (the engine build downloads it)")
    name = sdist.name.removesuffix(".tar.gz") + "/vendor/llama.cpp/" + str(rel).removeprefix("llama.cpp/")
    with tarfile.open(sdist) as tar:
        return tar.extractfile(name).read().decode()


def test_flash_attention_loop_is_spliced_into_the_sdists_ops_cpp():
    text = _sdist_file(engine_patches.OPS_CPP)
    code = (engine_build.RECIPE / "wasm_flash_attn.cpp").read_text()
    out = engine_patches.patch_ops(text, code)
    fn = out.index("static void ggml_compute_forward_flash_attn_ext_f16_one_chunk(")
    assert out.index(code) < fn
    body = out[fn:]
    # Four unmasked positions at a time for a q8_0 K and V, decided once per call...
    assert body.index("const bool fa_tile4 = OFFGRID_FA_TILE4(k->type, v->type, k_vec_dot_type, logit_softcap);") < body.index("for (int ir = ir0;")
    # ...tried first in the loop over positions; a masked one falls through to upstream's code.
    loop = body.index("for (int64_t ic = ic_start; ic < ic_end; ++ic) {\n")
    assert body.index(engine_patches.FLASH_ATTN_TILE) == loop + len("for (int64_t ic = ic_start; ic < ic_end; ++ic) {\n")
    assert body.index("const float mv = mp ? slope*GGML_CPU_FP16_TO_FP32(mp[ic]) : 0.0f;") > loop
    # q8_0 V rows go through ours; every other type still through upstream's two steps.
    assert ("if (OFFGRID_FUSED_V_Q8_0(v->type)) {\n                    offgrid_vec_mad_q8_0(DV, VKQ32, v_data, vs);\n"
            "                } else if (v_to_float) {\n                    v_to_float(v_data, V32, DV);") in out
    assert out.replace(code + "\n", "").lower().count("offgrid_") == 4


def test_our_dot_products_are_spliced_into_the_sdists_quants_c(tmp_path):
    """patch_quants against the real quants.c of the pinned sdist: our kernels come before the
    first dot product and each patched function returns through ours before upstream's code."""
    text = _sdist_file(engine_patches.QUANTS_C)
    kernels = (engine_build.RECIPE / "wasm_dot_kernels.c").read_text()
    out = engine_patches.patch_quants(text, kernels)
    assert out.index(kernels) < out.index("void ggml_vec_dot_")
    for name in engine_patches.OUR_DOT_PRODUCTS:
        body = out[out.index(f"void ggml_vec_dot_{name}("):]
        assert f"offgrid_vec_dot_{name}(n, s," in body.split("\n}\n")[0].split("#if defined __wasm_simd128__")[0]
        assert f"static void offgrid_vec_dot_{name}(" in kernels
    # Activations are rounded to the nearest int8, as native llama.cpp does, not truncated.
    assert "trunc_sat_f32x4(v)" not in out and out.count("trunc_sat_f32x4(wasm_f32x4_nearest(v))") == 2
    # ggml's 2-row x 2-column calls (prefill) go to the 2x2 kernel with both rows and both columns.
    assert ("    if (nrc == 2) {\n        offgrid_vec_dot_q4_1_q8_1_2x2(n, s, bs, (const block_q4_1 *) vx, "
            "(const block_q4_1 *) ((const char *) vx + bx),\n            (const block_q8_1 *) vy, "
            "(const block_q8_1 *) ((const char *) vy + by));\n        return;\n    }\n") in out
    # Nothing else of upstream's changed.
    assert out.replace(kernels + "\n", "").count("offgrid_") == 2 * len(engine_patches.OUR_DOT_PRODUCTS)


def test_prefill_asks_our_dot_products_for_two_rows_and_columns():
    """patch_ggml_cpu against the pinned sdist's ggml-cpu.c: the types with our 2x2 kernel get
    nrows = 2 on wasm (as on ARM with i8mm), and a plain product with an odd number of columns
    splits off its last column instead of giving up the 2x2 calls."""
    text = _sdist_file(engine_patches.GGML_CPU_C)
    out = engine_patches.patch_ggml_cpu(text)
    entry = out[out.index("    [GGML_TYPE_Q4_1] = {"):]
    entry = entry[:entry.index("\n    },")]
    assert ("#if defined (__ARM_FEATURE_MATMUL_INT8) || defined (__wasm_simd128__)\n"
            "        .nrows                    = 2,\n#else\n        .nrows                    = 1,") in entry
    assert out.count("#if defined (__ARM_FEATURE_MATMUL_INT8) || defined (__wasm_simd128__)") == len(engine_patches.OUR_DOT_PRODUCTS)
    odd = out.index(engine_patches.MUL_MAT_ODD)
    upstream = out[odd + len(engine_patches.MUL_MAT_ODD):]
    assert upstream.startswith("            if ((nr0 % 2 != 0) || (ne11 % 2 != 0)")
    assert upstream.index("ggml_compute_forward_mul_mat_one_chunk(params, dst, src0->type, num_rows_per_vec_dot") < upstream.index("\n        }\n")
    # Nothing of upstream's is gone but the one traits line (whitespace aside: the chunk call is indented).
    import difflib

    gone = [d for d in difflib.ndiff([x.strip() for x in text.splitlines()], [x.strip() for x in out.splitlines()])
            if d.startswith("- ")]
    assert gone == ["- #if defined (__ARM_FEATURE_MATMUL_INT8)"] * len(engine_patches.OUR_DOT_PRODUCTS)


def test_our_q4_1_buffer_type_is_compiled_and_offered_after_upstreams():
    """patch_ggml_cpu_cpp and patch_cpu_cmake against the pinned sdist: the repack file is built
    with ggml-cpu's sources and its buffer type is the last of the CPU's extra ones, on wasm only."""
    cmake = engine_patches.patch_cpu_cmake(_sdist_file(engine_patches.GGML_CPU_CMAKE))
    assert f"        ggml-cpu/repack.cpp\n        ggml-cpu/{engine_patches.REPACK_CPP}\n" in cmake
    text = _sdist_file(engine_patches.GGML_CPU_CPP)
    out = engine_patches.patch_ggml_cpu_cpp(text)
    fn = out.index(engine_patches.EXTRA_BUFTS_FN)
    assert out.index("ggml_backend_buffer_type_t offgrid_q4_1_buffer_type(void);") < fn
    body = out[fn:out.index("    }();", fn)]
    assert body.index("ggml_backend_cpu_repack_buffer_type()") < body.index(engine_patches.OUR_BUFT) < body.index("return bufts;")
    assert out.replace(engine_patches.OUR_BUFT, "").replace(
        "#if defined(__wasm_simd128__)\nggml_backend_buffer_type_t offgrid_q4_1_buffer_type(void);\n#endif\n\n", "") \
        .replace("#endif\n\n\n        return bufts;", "#endif\n\n        return bufts;") == text


def test_served_simd_builds_carry_the_q4_1_buffer_type_and_say_how_weights_grow(dist):
    """Each of our builds (and compat flavour) has the repack buffer type compiled in (its name
    is in the wasm); builds.json says q4_1 weights take 24/20 of the file in memory there."""
    _require_simd(_builds(dist))
    name = b"WASM_Q4_1_F32"
    for b in _builds(dist)["builds"]:
        wasms = [b["wasm"], *([b["compat"]["wasm"]] if b["compat"] else [])]
        for wasm in wasms:
            assert (name in (dist / wasm).read_bytes()) == b["simd_kernels"], (b["id"], wasm)
        assert b.get("weight_growth", {}) == (engine_patches.WEIGHT_GROWTH if b["simd_kernels"] else {}), b["id"]
    assert engine_patches.WEIGHT_GROWTH == {"Q4_1": 1.2}


def test_a_second_assemble_compiles_nothing_and_asks_nothing(dist, tmp_path, monkeypatch):
    _require_simd(_builds(dist))
    calls: list[list[str]] = []
    real = subprocess.run

    def run(cmd, *a, **kw):
        calls.append([str(c) for c in cmd])
        return real(cmd, *a, **kw)

    monkeypatch.setattr(subprocess, "run", run)
    doc = engine_site.assemble(tmp_path, CACHE, log=lambda *_: None)
    assert [b["id"] for b in doc["builds"]] == [b["id"] for b in _builds(dist)["builds"]]
    # Only the glue swap ran (node, local): no apt, mmdebstrap, chroot, pip or npm.
    assert calls and all(Path(c[0]).name == "node" for c in calls), calls
    assert (tmp_path / "engine" / "simd" / "wasm" / "wllama.wasm").read_bytes() == (dist / "engine" / "simd" / "wasm" / "wllama.wasm").read_bytes()


def test_cache_key_follows_the_recipe_and_the_inputs(monkeypatch, tmp_path):
    key = engine_build.cache_key(engine_build.SIMD)
    assert key == engine_build.cache_key(engine_build.SIMD)
    monkeypatch.setattr(engine_build, "SDIST", (*engine_build.SDIST[:2], "0" * 64))
    assert engine_build.cache_key(engine_build.SIMD) != key
    monkeypatch.undo()
    recipe = tmp_path / "engine"
    shutil.copytree(engine_build.RECIPE, recipe)
    monkeypatch.setattr(engine_build, "RECIPE", recipe)
    assert engine_build.cache_key(engine_build.SIMD) == key
    with (recipe / "build-in-chroot.sh").open("a") as f:
        f.write("# changed\n")
    assert engine_build.cache_key(engine_build.SIMD) != key


def test_no_toolchain_ships_the_stock_engine_only(tmp_path, monkeypatch):
    monkeypatch.setattr(engine_build, "_why_no_toolchain", lambda: "not a Debian system")
    lines: list[str] = []
    empty_cache = tmp_path / "cache"
    monkeypatch.setenv("OFFGRID_ENGINE_CACHE", str(empty_cache / "engine"))  # not the machine-wide one
    doc = engine_site.assemble(tmp_path / "dist", empty_cache, log=lines.append)
    assert doc == {"builds": [engine_site.STOCK], "default_cpu": "stock", "wllama": engine_build.wllama_version()}
    assert json.loads((tmp_path / "dist" / "engine" / "builds.json").read_text()) == doc
    assert len(lines) == 1 and "not a Debian system" in lines[0] and "stock" in lines[0]
    assert not (tmp_path / "dist" / "engine" / "simd").exists()


def test_a_moved_toolchain_is_reported_in_one_line(dist, monkeypatch):
    _require_simd(_builds(dist))
    root = engine_build.engine_dir(CACHE) / engine_build.SUITE
    installed = engine_build.installed_versions(root)
    assert set(installed) == set(engine_build.TOOLCHAIN)
    lines: list[str] = []
    monkeypatch.setattr(engine_build, "TOOLCHAIN", installed)
    assert engine_build._check_toolchain(root, lines.append)["differs"] == {} and lines == []
    monkeypatch.setattr(engine_build, "TOOLCHAIN", {**installed, "emscripten": "3.1.69+dfsg-1"})
    moved = engine_build._check_toolchain(root, lines.append)
    assert moved["differs"] == {"emscripten": ["3.1.69+dfsg-1", installed["emscripten"]]}
    assert len(lines) == 1 and "differs" in lines[0] and "emscripten" in lines[0] and "3.1.69" in lines[0]
