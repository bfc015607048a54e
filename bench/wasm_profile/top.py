"""Self time per function in a V8 .cpuprofile, largest first."""
import collections
import json
import sys

prof = json.load(open(sys.argv[1]))
nodes = {n["id"]: n for n in prof["nodes"]}
dt = collections.Counter()
for sample, delta in zip(prof["samples"], prof["timeDeltas"]):
    dt[nodes[sample]["callFrame"]["functionName"] or "(anonymous)"] += delta
total = sum(dt.values())
for name, us in dt.most_common(int(sys.argv[2]) if len(sys.argv) > 2 else 25):
    print(f"{us / total * 100:5.1f}%  {us / 1e3:8.1f} ms  {name}")
