"""Print upstream ggml's wasm q4_0/q4_1/q8_0 dot products, renamed upstream_*, from the pinned
llama-cpp-python sdist (the build tree's quants.c carries our hooks)."""
import re
import sys
import tarfile

sys.path.insert(0, sys.argv[2])  # the repository's py/
from offgrid_dev import engine_patches  # noqa: E402

sdist = sys.argv[1]
name = sdist.rsplit("/", 1)[-1].removesuffix(".tar.gz") + "/vendor/" + str(engine_patches.QUANTS_C)
with tarfile.open(sdist) as tar:
    text = tar.extractfile(name).read().decode()
for fn in ("q4_0_q8_0", "q4_1_q8_1", "q8_0_q8_0"):
    m = re.search(rf"^void ggml_vec_dot_{fn}\(.*?^}}\n", text, re.S | re.M)
    print(m.group(0).replace("void ggml_vec_dot_", "static void upstream_vec_dot_", 1))
