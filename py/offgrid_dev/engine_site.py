"""Put the compiled engine builds (engine_build.py) into the site: dist/engine/<id>/ with
wllama's JS API around our glue, and dist/engine/builds.json, which the engine worker's
build chooser (web/engine/build_select.js) reads."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from . import engine_patches
from .engine_build import RECIPE, VARIANTS, WLLAMA_PKG, Variant, build, engine_dir, wllama_version


def swap_glue(esm_index: Path, glue: Path, out: Path, variant: Variant) -> None:
    """wllama's esm/index.js with its embedded emscripten glue replaced by `glue` (the JSPI build
    of `variant`; swap_glue.mjs says what its memory changes in wllama's worker code)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    memory = ["--wasm32"] if variant.memory == "wasm32" else ["--max-memory-gib", str(variant.max_memory // 2 ** 30)]
    subprocess.run(["node", str(RECIPE / "swap_glue.mjs"), str(esm_index), str(glue), str(out), *memory],
                   check=True, stdout=subprocess.DEVNULL)


STOCK = {
    "id": "stock", "label": f"stock wllama {wllama_version()} (no SIMD kernels)",
    "module": "vendor/wllama/index.js", "wasm": "vendor/wllama/wasm/wllama.wasm",
    "compat": {"worker": "vendor/wllama-compat/wllama.js", "wasm": "vendor/wllama-compat/wllama.wasm"},
    "webgpu": True, "simd_kernels": False, "requires": ["jspi", "memory64"], "memory": "memory64",
    "max_memory": 4 * 2 ** 30,  # upstream links (and its worker makes) every memory with 4 GiB at most
}


def _try_build(cache: Path, variant: Variant, log) -> Path | None:
    try:
        return build(cache, variant, log)
    except (subprocess.CalledProcessError, OSError) as exc:
        # A download or compile that fails must not stop the site: say so in one line and ship
        # what was built. (CI is Debian + root, where the engine tests then fail.)
        log(f"  ENGINE: building the {variant.id} engine failed ({exc}); see {engine_dir(cache)}; "
            "the site ships the builds made so far")
        return None


def _announce(variant: Variant, built: Path, log) -> dict:
    info = json.loads((built / "build.json").read_text())
    log(f"  engine {variant.id}: {info['wasm_bytes']:,} B wasm, {info['dot_i16x8_s']} SIMD dot products")
    return info


def assemble(dist: Path, cache: Path, log=print) -> dict:
    """dist/engine/<id>/ for every build this machine can make, and dist/engine/builds.json."""
    shutil.rmtree(dist / "engine", ignore_errors=True)  # no build of an earlier run may linger
    builds = [STOCK]
    for variant in VARIANTS:
        built = _try_build(cache, variant, log)
        if built is None:
            break
        info = _announce(variant, built, log)
        out = dist / "engine" / variant.id
        swap_glue(WLLAMA_PKG / "esm" / "index.js", built / "wllama.js", out / "index.js", variant)
        (out / "wasm").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(built / "wllama.wasm", out / "wasm" / "wllama.wasm")
        entry = {
            "id": variant.id, "label": variant.label,
            "module": f"engine/{variant.id}/index.js", "wasm": f"engine/{variant.id}/wasm/wllama.wasm",
            "compat": None, "webgpu": False, "simd_kernels": True, "requires": list(variant.requires),
            "memory": variant.memory, "max_memory": variant.max_memory, "weight_growth": engine_patches.WEIGHT_GROWTH,
            "toolchain": info["toolchain"], "wasm_bytes": info["wasm_bytes"], "dot_i16x8_s": info["dot_i16x8_s"],
            "relaxed_dot": info.get("relaxed_dot", 0), "relaxed_madd": info["relaxed_madd"],
            "build_seconds": info["build_seconds"],
        }
        compat = _try_build(cache, variant.compat, log) if variant.compat else None
        if compat is not None:
            # wllama's compat worker is the emscripten glue itself (as @wllama/wllama-compat ships it).
            c = _announce(variant.compat, compat, log)
            (out / "compat").mkdir(parents=True, exist_ok=True)
            for name in ("wllama.js", "wllama.wasm"):
                shutil.copyfile(compat / name, out / "compat" / name)
            entry["compat"] = {"worker": f"engine/{variant.id}/compat/wllama.js",
                               "wasm": f"engine/{variant.id}/compat/wllama.wasm"}
            entry["compat_info"] = {k: c[k] for k in ("wasm_bytes", "dot_i16x8_s", "build_seconds")}
        builds.append(entry)
    # The CPU build for every browser with SIMD128; the worker takes relaxed where it validates.
    default_cpu = "simd" if any(b["id"] == "simd" for b in builds) else "stock"
    doc = {"builds": builds, "default_cpu": default_cpu, "wllama": wllama_version()}
    (dist / "engine").mkdir(parents=True, exist_ok=True)
    (dist / "engine" / "builds.json").write_text(json.dumps(doc, indent=1))
    return doc
