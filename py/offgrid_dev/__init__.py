"""Developer tooling: site assembly (build.py), model catalog, dev server.

Never shipped to the browser; only `offgrid` is.
"""
