#!/bin/bash
# Build wllama 3.8.1's wasm (CPU only, with llama.cpp's WASM SIMD128 kernels) inside the Debian
# chroot that has emscripten. Run by offgrid_dev/engine_build.py; inputs are prepared by it:
#   SRC          wllama's npm package (CMakeLists.txt, cpp/) with llama.cpp/ next to cpp/
#   BUILD        build dir name under $SRC
#   EXTRA_CFLAGS extra compile flags for every target
#   CPU_CFLAGS   extra compile flags for ggml-cpu only (relaxed SIMD: "-mrelaxed-simd -ffp-contract=fast")
#   CMAKE_EXTRA  extra cmake arguments (compat build: "-DWLLAMA_COMPAT=ON -DLLAMA_WASM_MEM64=OFF")
#   PROC         EMSCRIPTEN_SYSTEM_PROCESSOR (ggml-cpu picks arch/wasm when it matches "wasm";
#                emscripten's default "x86" builds the generic, kernel-less code)
# make's full output goes to $SRC/$BUILD/make.log (the caller prints progress from it).
set -euo pipefail
SRC=${SRC:-/src/wllama}
BUILD=${BUILD:-build-simd}
PROC=${PROC:-wasm64}
EXTRA_CFLAGS=${EXTRA_CFLAGS:-}
CPU_CFLAGS=${CPU_CFLAGS:-}
CMAKE_EXTRA=${CMAKE_EXTRA:-}
# emscripten >= 5 no longer reads Module.mainScriptUrlOrBlob unless INCOMING_MODULE_JS_API lists it;
# wllama's worker starts its pthreads through it (without it, n_threads > 1 hangs forever).
INCOMING=ENVIRONMENT,arguments,canvas,dynamicLibraries,elementPointerLock,instantiateWasm,locateFile,monitorRunDependencies,noExitRuntime,noInitialRun,onAbort,onExit,onRuntimeInitialized,postRun,preInit,preRun,print,printErr,setStatus,statusMessage,stderr,stdin,stdout,thisProgram,wasm,websocket,mainScriptUrlOrBlob,wasmMemory,INITIAL_MEMORY,wasmBinary
JOBS=${JOBS:-$(nproc)}
cd "$SRC"
mkdir -p "$BUILD" && cd "$BUILD"
# shellcheck disable=SC2086
emcmake cmake .. \
  -DGGML_WEBGPU=OFF \
  -DEMSCRIPTEN_SYSTEM_PROCESSOR="$PROC" \
  -DWLLAMA_TEST_BACKEND=OFF \
  -DCMAKE_C_FLAGS="$EXTRA_CFLAGS" -DCMAKE_CXX_FLAGS="$EXTRA_CFLAGS" \
  -DCMAKE_EXE_LINKER_FLAGS="-sINCOMING_MODULE_JS_API=$INCOMING" $CMAKE_EXTRA > cmake.log 2>&1
grep -q "Wasm detected" cmake.log || { echo "ggml-cpu did not detect wasm (no SIMD kernels); see cmake.log" >&2; exit 1; }
if [ -n "$CPU_CFLAGS" ]; then
  # ggml-cpu only: add the flags to its generated flags.make (cmake is not re-run after this).
  F=llama.cpp/ggml/src/CMakeFiles/ggml-cpu.dir/flags.make
  sed -i "s/^\(C_FLAGS = .*\)\$/\1 $CPU_CFLAGS/; s/^\(CXX_FLAGS = .*\)\$/\1 $CPU_CFLAGS/" "$F"
fi
emmake make wllama -j"$JOBS" > make.log 2>&1 || { tail -n 40 make.log >&2; exit 1; }
ls -la wllama.js wllama.wasm
