"""Fuzzing `load_settings` with YAML files of random shape: ConfigError or Settings."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from seismo.config import Settings, load_settings
from tests.fuzz.strategies import FUZZ, json_values, refuses_cleanly

SECTIONS = {name: field for name, field in Settings.model_fields.items() if name != "data_dir"}
yaml_values = json_values.filter(lambda v: not (isinstance(v, float) and v != v)) | \
    st.sampled_from(["5m", "1h", "-1s", "0", "99999999999y", "{job=\"a\"}", "{", "cpu",
                     "mad", "nope", "127.0.0.1", 0, -1, 10**30, [], {}])


@st.composite
def config_docs(draw: st.DrawFn) -> dict[str, Any]:
    """Known top-level keys (and some unknown), with values of any shape; sections get
    a mix of their real keys and random ones."""
    doc: dict[str, Any] = {}
    for name in draw(st.lists(st.sampled_from(sorted(SECTIONS)), max_size=4, unique=True)):
        sub = getattr(SECTIONS[name].annotation, "model_fields", None)
        if sub and draw(st.booleans()):
            keys = st.sampled_from(sorted(sub)) | st.text(max_size=6)
            doc[name] = draw(st.dictionaries(keys, yaml_values, max_size=4))
        elif name in ("rules", "channels", "routes", "slos", "inhibit_rules",
                      "scrape_configs") and draw(st.booleans()):
            doc[name] = draw(st.lists(st.dictionaries(
                st.sampled_from(["name", "expr", "type", "url", "job_name", "targets",
                                 "static_configs", "matchers", "objective", "selector",
                                 "receiver", "match"]) | st.text(max_size=5),
                yaml_values, max_size=4), max_size=2))
        else:
            doc[name] = draw(yaml_values)
    if draw(st.booleans()):
        doc[draw(st.text(max_size=6))] = draw(yaml_values)
    return doc


@FUZZ
@given(config_docs() | json_values)
def test_load_settings_never_fails_unhandled(doc: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "seismo.yaml"
        if isinstance(doc, dict):
            doc = {**doc, "data_dir": str(Path(tmp) / "data")}
        path.write_text(yaml.safe_dump(doc, allow_unicode=True))
        refuses_cleanly(lambda: load_settings(path, environ={}))


@FUZZ
@given(st.text(max_size=60))
def test_load_settings_on_raw_text_never_fails_unhandled(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "seismo.yaml"
        path.write_text(text)
        refuses_cleanly(lambda: load_settings(path, environ={}))
