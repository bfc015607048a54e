#!/bin/bash
# Time the wasm dot-product kernels alone: upstream ggml SIMD128 vs ours with relaxed SIMD.
# Needs the engine build's chroot and sdist (python3 build.py makes them): engine_build.engine_dir.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); root=$(cd "$here/../.." && pwd)
engine=$(cd "$root" && python3 -c 'import sys; from pathlib import Path; sys.path.insert(0, "py"); from offgrid_dev.engine_build import engine_dir; print(engine_dir(Path(".cache")))')
chroot_dir=$engine/sid
work=$chroot_dir/tmp/wasm_kernels; rm -rf "$work"; mkdir -p "$work/bench/wasm_kernels" "$work/py/offgrid_dev/engine"
# upstream's three functions, renamed, as the baseline
python3 "$here/extract_upstream.py" "$engine/src/llama_cpp_python-0.3.36.tar.gz" "$root/py" > "$work/bench/wasm_kernels/upstream.inc"
cp "$here/bench.c" "$here/tried.c" "$work/bench/wasm_kernels/"; cp "$root/py/offgrid_dev/engine/wasm_dot_kernels.c" "$work/py/offgrid_dev/engine/"
mountpoint -q "$chroot_dir/proc" || mount --bind /proc "$chroot_dir/proc"
# Node (the chroot's) and Chromium: V8 versions differ, and Chromium is what the app runs in.
for v in simd relaxed; do
  flags="-msimd128"; [ $v = relaxed ] && flags="$flags -mrelaxed-simd"
  chroot "$chroot_dir" bash -c "cd /tmp/wasm_kernels/bench/wasm_kernels && emcc -O3 $flags -sINITIAL_MEMORY=192MB \
    -sSINGLE_FILE -sENVIRONMENT=web,node bench.c -o bench-$v.js 2>&1 | grep -v -e warning -e INFO || true; node bench-$v.js"
  cp "$work/bench/wasm_kernels/bench-$v.js" "$here/bench-$v.js"
done
[ -n "${NO_CHROMIUM:-}" ] || python3 "$here/in_chromium.py" "$here/bench-simd.js" "$here/bench-relaxed.js"
