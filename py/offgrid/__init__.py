"""Offgrid's controller: chat state and the engine protocol, in plain Python.

Runs in Pyodide on the page's main thread and on CPython for tests. Only
`browser.py` touches JavaScript.
"""

__version__ = "0.1.0"
