"""web/shared/protocol.gen.js: generated from protocol.py (data only), never stale,
and the build refuses a stale copy (`python3 build.py protocol` regenerates it)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from offgrid_dev import gen_protocol, site

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / "web" / "shared"
GENERATED = SHARED / "protocol.gen.js"

# ------------------------------------------------------------ the generated file


def test_generated_js_is_up_to_date():
    expected = gen_protocol.render()
    actual = GENERATED.read_text(encoding="utf-8") if GENERATED.exists() else "<missing>"
    # A plain bool assert: a diff of the schema would hide the advice.
    assert actual == expected, "web/shared/protocol.gen.js is stale: run `python3 build.py protocol`"


def test_generated_js_is_data_only():
    """Every statement is `export const NAME = <literal>;`: no functions, no calls."""
    text = gen_protocol.render()
    code = "\n".join(line for line in text.splitlines() if not line.startswith("//"))
    code = re.sub(r"/\*\*.*?\*/", "", code, flags=re.S)  # JSDoc comments
    assert not re.search(r"\bfunction\b|=>|\bimport\b|\bnew\b|\(", code)
    for statement in (s.strip() for s in code.split(";")):
        assert not statement or re.match(r"export const [A-Z_]+ = ", statement), statement[:80]
    # Compact: one line per message type, not a pretty-printed schema.
    assert len(text.splitlines()) < 150


def test_no_javascript_is_kept_in_python():
    source = Path(gen_protocol.__file__).read_text(encoding="utf-8")
    for token in ("function ", "=>", "export function", "structuredClone"):
        assert token not in source


# ------------------------------------------------------------ the build checks it


def test_the_build_refuses_a_stale_file(tmp_path, monkeypatch):
    stale = tmp_path / "protocol.gen.js"
    stale.write_text(gen_protocol.render().replace('"wasm-st"', '"wasm-xx"'), encoding="utf-8")
    problem = site.protocol_js_problem(stale)
    assert "python3 build.py protocol" in problem and "stale" in problem and "\n" not in problem
    with pytest.raises(SystemExit) as info:
        site.check_protocol_js(stale)
    assert str(info.value.code) == problem

    # assemble() stops before it does anything (no npm, no dist/), and leaves the file alone.
    def no_npm(log=print):
        raise AssertionError("the build went on past a stale protocol.gen.js")

    monkeypatch.setattr(site, "PROTOCOL_JS", stale)
    monkeypatch.setattr(site, "npm_ci", no_npm)
    before = stale.read_text(encoding="utf-8")
    with pytest.raises(SystemExit) as info:
        site.assemble(tmp_path / "dist", tmp_path / "cache", log=lambda line: None)
    assert "python3 build.py protocol" in str(info.value.code)
    assert not (tmp_path / "dist").exists() and stale.read_text(encoding="utf-8") == before

    # A missing file is refused the same way.
    assert "missing" in site.protocol_js_problem(tmp_path / "nope.gen.js")
    # The up-to-date file passes.
    fresh = tmp_path / "fresh.gen.js"
    fresh.write_text(gen_protocol.render(), encoding="utf-8")
    site.check_protocol_js(fresh)


def test_build_test_goes_on_with_a_warning_so_the_staleness_test_can_fail(tmp_path, monkeypatch):
    """`python3 build.py test` builds with allow_stale_protocol: a warning, then the tests run."""
    stale = tmp_path / "protocol.gen.js"
    stale.write_text("// old\n", encoding="utf-8")
    monkeypatch.setattr(site, "PROTOCOL_JS", stale)

    class PastTheCheck(Exception):
        pass

    def npm_ci(log=print):
        raise PastTheCheck

    monkeypatch.setattr(site, "npm_ci", npm_ci)
    lines: list[str] = []
    with pytest.raises(PastTheCheck):
        site.assemble(tmp_path / "dist", tmp_path / "cache", log=lines.append, allow_stale_protocol=True)
    assert any(line.startswith("WARNING:") and "python3 build.py protocol" in line for line in lines)
    assert stale.read_text(encoding="utf-8") == "// old\n"  # checked, never rewritten by a build


def _build_py(monkeypatch, tmp_path):
    monkeypatch.setenv("OFFGRID_DIST", str(tmp_path / "dist"))
    monkeypatch.setenv("OFFGRID_CACHE", str(tmp_path / "cache"))
    spec = importlib.util.spec_from_file_location("offgrid_build_py", ROOT / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_build_py_stops_on_a_stale_file_and_protocol_regenerates_it(tmp_path, monkeypatch, capsys):
    build_py = _build_py(monkeypatch, tmp_path)
    target = tmp_path / "protocol.gen.js"
    target.write_text("// old\n", encoding="utf-8")
    monkeypatch.setattr(site, "PROTOCOL_JS", target)
    with pytest.raises(SystemExit) as info:
        build_py.main([])
    assert "run `python3 build.py protocol`" in str(info.value.code)
    assert not (tmp_path / "dist").exists()

    assert build_py.main(["protocol"]) == 0
    assert target.read_text(encoding="utf-8") == gen_protocol.render()
    assert "regenerated" in capsys.readouterr().out
    assert build_py.main(["protocol"]) == 0
    assert "up to date" in capsys.readouterr().out
    assert "build.py protocol" in build_py.__doc__
