"""The shipped site carries no test hooks and no test-only model; the hooked copy the
e2e tests use has them, without touching dist/."""

from __future__ import annotations

import json

import pytest

from offgrid_dev.site_variants import make_hooked_site


def test_the_shipped_site_has_no_test_hooks_and_no_test_only_model(dist):
    shipped = {p.relative_to(dist).as_posix() for p in dist.rglob("*") if p.is_file()}
    assert "js/engine/engine.worker.js" in shipped
    assert not [p for p in shipped if "test_hooks" in p or ".v2." in p]
    code = "\n".join((dist / p).read_text(errors="replace") for p in shipped if p.startswith("js/"))
    for switch in ("offgrid-test", "device_memory_gb=", "quota_mb", "simulateQuota(", "test_hooks"):
        assert switch not in code.replace("export function simulateQuota(", ""), switch


def test_a_hooked_copy_has_the_hooks_and_leaves_dist_alone(dist, tmp_path):
    before = (dist / "js" / "engine" / "engine.worker.js").read_text()
    site = make_hooked_site(dist, tmp_path / "hooked", no_jspi=True, device_memory_gb=0.5)
    entry = (site / "js" / "engine" / "engine.worker.js").read_text()
    assert "import { withHooks } from './test_hooks.js';" in entry
    assert (site / "js" / "engine" / "test_hooks_config.js").read_text() == 'export default {"no_jspi": true, "device_memory_gb": 0.5};\n'
    assert (dist / "js" / "engine" / "engine.worker.js").read_text() == before
    assert not (dist / "js" / "engine" / "test_hooks.js").exists()
    sw = (site / "sw.js").read_text()
    assert "js/engine/test_hooks.js" in sw and (dist / "sw.js").read_text() != sw
    with pytest.raises(ValueError, match="unknown test hooks"):
        make_hooked_site(dist, tmp_path / "bad", no_such_hook=True)
    assert json.loads((site / "models" / "catalog.json").read_text()) == json.loads((dist / "models" / "catalog.json").read_text())
