"""build.py's model versions: a metadata-only update changes only the bytes
of the GGUF header, so the weight store's delta update fetches one chunk."""

from __future__ import annotations

import json
from pathlib import Path
import shutil

import pytest

from offgrid_dev import models, site_variants
from offgrid_dev.gguf_header import read_metadata, with_string_value

ROOT = Path(__file__).resolve().parents[1]

CACHE = ROOT / ".cache"


def test_a_header_value_changes_in_place(tmp_path, dist):
    src = dist / "models" / models.MODELS[0].file
    out = tmp_path / "v2.gguf"
    name = read_metadata(src)["general.name"]
    with_string_value(src, out, "general.name", name[:-2] + "v2")
    assert read_metadata(out)["general.name"] == name[:-2] + "v2"
    assert out.stat().st_size == src.stat().st_size
    with pytest.raises(ValueError, match="bytes"):
        with_string_value(src, tmp_path / "bad.gguf", "general.name", name + "!")
    with pytest.raises(KeyError):
        with_string_value(src, tmp_path / "bad.gguf", "general.no_such_key", "x")


def test_version_2_differs_from_version_1_in_the_first_chunk_only(tmp_path, dist):
    site = tmp_path / "site"
    (site / "models").mkdir(parents=True)
    shutil.copy(dist / "models" / "catalog.json", site / "models" / "catalog.json")
    v1 = next(m for m in json.loads((dist / "models" / "catalog.json").read_text())["models"] if m["id"] == models.DEFAULT_MODEL)
    v2 = site_variants.publish_next_version(site, CACHE)
    assert (v1["version"], v2["version"]) == ("1", "2")
    assert v2["id"] == v1["id"] and v2["file"] != v1["file"] and (site / "models" / v2["file"]).exists()
    assert [i for i, (a, b) in enumerate(zip(v1["chunks"], v2["chunks"])) if a != b] == [0]
    published = json.loads((site / "models" / "catalog.json").read_text())
    assert next(m for m in published["models"] if m["id"] == v1["id"]) == v2
    # dist/ itself still offers version 1.
    assert json.loads((dist / "models" / "catalog.json").read_text())["models"][0]["version"] == "1"


def test_the_catalog_carries_what_the_memory_estimate_needs(dist):
    for m in json.loads((dist / "models" / "catalog.json").read_text())["models"]:
        for key in ("n_layer", "n_embd", "n_head", "n_head_kv", "key_length", "value_length", "n_vocab", "context_length"):
            assert isinstance(m[key], int) and m[key] > 0, (m["id"], key)
