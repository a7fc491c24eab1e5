from dataclasses import dataclass, field
from typing import Literal

import pytest

from fmrecipes.config import build, load, parse_overrides
from fmrecipes.errors import ConfigError
from fmrecipes.lm.config import LMConfig


@dataclass
class Inner:
    lr: float = 1.0
    kind: Literal["a", "b"] = "a"


@dataclass
class Outer:
    name: str = "x"
    steps: int = 1
    tags: list[str] = field(default_factory=list)
    cap: float | None = None
    inner: Inner = field(default_factory=Inner)


def test_overrides_are_nested_and_parsed_as_yaml():
    assert parse_overrides(["inner.lr=0.5", "steps=5", "tags=[a, b]", "cap=null"]) == {
        "inner": {"lr": 0.5}, "steps": 5, "tags": ["a", "b"], "cap": None}
    assert build(Outer, parse_overrides(["inner.lr=3e-4"])).inner.lr == 3e-4  # YAML 1.1 reads 3e-4 as a string


def test_build_types_and_int_for_float():
    cfg = build(Outer, {"steps": 3, "inner": {"lr": 2, "kind": "b"}, "cap": 50})
    assert cfg.inner.lr == 2.0 and isinstance(cfg.inner.lr, float)
    assert cfg.inner.kind == "b" and cfg.cap == 50.0 and cfg.steps == 3


def test_unknown_key_names_the_key_and_choices():
    with pytest.raises(ConfigError, match=r"unknown config key 'inner.lrr'; valid keys here: kind, lr"):
        build(Outer, {"inner": {"lrr": 1}})


@pytest.mark.parametrize("data,msg", [
    ({"steps": "many"}, "steps='many' has the wrong type; expected an integer"),
    ({"steps": 1.5}, "expected an integer"),
    ({"inner": {"kind": "c"}}, "inner.kind='c' is not valid; choose one of 'a', 'b'"),
    ({"inner": 3}, "inner must be a section"),
    ({"tags": "a"}, "expected a list"),
])
def test_wrong_values_name_the_key(data, msg):
    with pytest.raises(ConfigError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        build(Outer, data)


def test_a_value_of_no_allowed_kind_names_the_kinds():
    from fmrecipes.core.dist import RunConfig

    with pytest.raises(ConfigError, match=r"^compile='maybe' has the wrong type; expected bool or 'auto'$"):
        build(RunConfig, {"compile": "maybe"})
    assert build(RunConfig, {"compile": True}).compile is True and build(RunConfig, {}).compile == "auto"


def test_load_yaml_file_plus_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("train: {lr: 0.5, steps: 7}\nmodel: {n_layer: 3}\n")
    cfg = load(LMConfig, f, ["train.steps=9"])
    assert (cfg.train.lr, cfg.train.steps, cfg.model.n_layer) == (0.5, 9, 3)


def test_load_reports_file_in_error(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("train: {lrr: 0.5}\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'train.lrr'.*\(in .*c.yaml\)"):
        load(LMConfig, f)


def test_model_validation():
    with pytest.raises(ConfigError, match="divisible"):
        load(LMConfig, None, ["model.d_model=30", "model.n_head=4"])


@dataclass
class Tuned:
    """A section whose parent gives it non-default values through its default_factory."""

    inner: Inner = field(default_factory=lambda: Inner(lr=0.25, kind="b"))


def test_override_keeps_the_parents_default_factory_values():
    built = build(Tuned, parse_overrides(["inner.lr=0.5"]))
    assert built.inner.lr == 0.5 and built.inner.kind == "b"  # not the class default "a"
    assert build(Tuned, {}).inner == Inner(lr=0.25, kind="b")


@dataclass
class Checked:
    n: int = 1

    def validate(self, prefix: str = "checked") -> None:
        if self.n < 0:
            raise ConfigError(f"{prefix}.n={self.n} must be >= 0")


@dataclass
class Holder:
    deep: Checked = field(default_factory=Checked)


def test_nested_validate_names_the_full_key():
    with pytest.raises(ConfigError, match=r"^deep\.n=-1 must be >= 0"):
        build(Holder, {"deep": {"n": -1}})
