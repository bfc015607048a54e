"""Print upstream ggml's wasm q4_0/q4_1/q8_0 dot products from quants.c, renamed upstream_*."""
import re
import sys

text = open(sys.argv[1]).read()
for name in ("q4_0_q8_0", "q4_1_q8_1", "q8_0_q8_0"):
    m = re.search(rf"^void ggml_vec_dot_{name}\(.*?^}}\n", text, re.S | re.M)
    print(m.group(0).replace("void ggml_vec_dot_", "static void upstream_vec_dot_", 1))
