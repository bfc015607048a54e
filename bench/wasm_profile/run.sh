#!/bin/bash
# Link decode.c against an engine build tree's static libraries and run it under node with the V8
# CPU profiler; prints the functions with the most self time.
# Usage: [TREE=wasm32|memory64] bench/wasm_profile/run.sh [N_PROMPT] [N_GEN]   (after python3 build.py)
# TREE: wasm32 (default; its libraries are the last variant built there, relaxed) or memory64.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); root=$(cd "$here/../.." && pwd)
engine=$(cd "$root" && python3 -c 'import sys; from pathlib import Path; sys.path.insert(0, "py"); from offgrid_dev.engine_build import engine_dir; print(engine_dir(Path(".cache")))')
chroot_dir=$engine/sid
tree=/build/${TREE:-wasm32}/wllama
mem=""; max=4GB; [ "${TREE:-wasm32}" = memory64 ] && { mem="-sMEMORY64=1"; max=8GB; }
work=$chroot_dir/tmp/wasm_profile; rm -rf "$work"; mkdir -p "$work"
cp "$here/decode.c" "$work/"; cp "$root/dist/models/SmolLM2-135M-Instruct.Q4_1.gguf" "$work/model.gguf"
mountpoint -q "$chroot_dir/proc" || mount --bind /proc "$chroot_dir/proc"
chroot "$chroot_dir" bash -c "cd /tmp/wasm_profile && emcc -O3 -msimd128 -pthread $mem -fwasm-exceptions \
  -I$tree/llama.cpp/include -I$tree/llama.cpp/ggml/include decode.c \
  $tree/out/llama.cpp/src/libllama.a $tree/out/llama.cpp/ggml/src/libggml.a \
  $tree/out/llama.cpp/ggml/src/libggml-cpu.a $tree/out/llama.cpp/ggml/src/libggml-base.a \
  --profiling-funcs -sALLOW_MEMORY_GROWTH=1 -sMAXIMUM_MEMORY=$max -sNODERAWFS=1 -sEXIT_RUNTIME=1 -sSTACK_SIZE=8MB -o decode.js 2>&1 | grep -v warning | head -20
  node decode.js model.gguf ${1:-3} ${2:-64} 2>/dev/null
  node --cpu-prof --cpu-prof-dir=prof decode.js model.gguf ${1:-3} ${2:-64} 2>/dev/null"
python3 "$here/top.py" "$work"/prof/*.cpuprofile 16 | cut -c1-150
