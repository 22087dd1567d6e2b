"""The config schema: built-ins, strict validation with key paths, YAML, overrides, extends."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventprop.train.config import (
    ConfigError,
    ExperimentConfig,
    apply_overrides,
    builtin_config_path,
    dump_config,
    list_builtin_configs,
    load_config,
    parse_override,
    read_yaml,
)

REPO_CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_builtin_configs_load_and_match_the_repository_copies():
    names = list_builtin_configs()
    assert {"yinyang", "shd", "shd_small", "ssc"} <= set(names)
    for name in names:
        load_config(name)  # validates
        packaged = builtin_config_path(name).read_text(encoding="utf-8")
        repo = (REPO_CONFIGS / f"{name}.yaml").read_text(encoding="utf-8")
        assert packaged == repo, f"configs/{name}.yaml differs from the packaged copy"
    assert sorted(p.stem for p in REPO_CONFIGS.glob("*.yaml")) == names


def test_default_is_yinyang_and_paper_recipe_is_shipped():
    assert load_config(None) == load_config("yinyang")
    shd = load_config("shd")
    assert shd.model.hidden == [1024] and shd.model.recurrent and shd.model.timing == "grid"
    assert shd.data.delay is not None and (shd.data.delay.n_delays, shd.data.delay.delay_ms) == (
        10,
        30.0,
    )
    assert [a["name"] for a in shd.data.augment] == ["shift", "blend"]
    assert shd.data.augment[0]["max_shift"] == 40 and shd.data.augment[1]["probs"] == [0.5, 0.5]
    assert shd.loss.name == "sum_weigh_exp"
    assert shd.regularizer.enabled and shd.regularizer.nu_upper == 14
    assert (shd.optim.name, shd.optim.lr, shd.train.batch_size) == ("adam", 1e-3, 32)
    s = shd.schedule
    assert (s.kind, s.fast, s.slow, s.factor, s.min_epochs) == ("ema", 0.8, 0.85, 0.5, 50)
    assert shd.train.rewire.enabled and shd.train.rewire.lift == 0.002
    small = load_config("shd_small")
    assert small.model.hidden == [256] and small.data.delay is None
    assert small.loss.name == "sum_weigh_exp"  # inherited through `extends: shd`
    ssc = load_config("ssc")
    assert ssc.data.dataset == "ssc" and ssc.data.validation.kind == "official"


def _problems(source, overrides=()):
    with pytest.raises(ConfigError) as info:
        load_config(source, overrides)
    return info.value.problems, str(info.value)


def test_unknown_key_names_its_path_and_the_allowed_keys():
    problems, _ = _problems({"model": {"hiden": [3]}})
    assert problems == [
        "model.hiden: unknown key (allowed here: hidden, recurrent, self_connections, taus, "
        "readout_taus, init, theta, min_denominator, backend, timing, exact_spike_limit, dtype)"
    ]
    problems, _ = _problems({"optim": {"lr": 1e-3}, "trian": {}})
    assert problems[0].startswith("trian: unknown key (allowed here: name, description, method")
    problems, _ = _problems({"model": {"taus": {"tau_mm": 3.0}}})
    assert problems[0].startswith("model.taus.tau_mm: unknown key (allowed here: tau_m, tau_s")


def test_wrong_types_name_path_expected_type_and_value():
    problems, _ = _problems(
        {
            "optim": {"lr": "fast"},
            "model": {"hidden": 256, "recurrent": "yes"},
            "train": {"epochs": 2.5},
            "data": {"validation": {"kind": "sometimes"}},
        }
    )
    assert "optim.lr: expected a number, got 'fast' (str)" in problems
    assert "model.hidden: expected a list, got 256 (int)" in problems
    assert "model.recurrent: expected true or false, got 'yes' (str)" in problems
    assert "train.epochs: expected an integer, got 2.5 (float)" in problems
    assert any(p.startswith("data.validation.kind: expected one of 'official'") for p in problems)


def test_list_items_bounds_and_strings_are_never_coerced():
    problems, _ = _problems({"model": {"hidden": [128, 0, "x"]}})
    assert "model.hidden[1]: expected a value > 0, got 0 (int)" in problems
    assert "model.hidden[2]: expected an integer, got 'x' (str)" in problems
    problems, _ = _problems({"optim": {"lr": "1e-3"}})  # a quoted string stays a string
    assert problems == ["optim.lr: expected a number, got '1e-3' (str)"]


def test_cross_field_errors_name_the_key():
    problems, _ = _problems({"data": {"dataset": "shd", "validation": {"kind": "official"}}})
    assert problems[0].startswith("data.validation.kind: SHD has no official validation set")
    problems, _ = _problems({"data": {"dataset": "hdf5"}})
    assert problems == ["data.train_file: required when data.dataset is 'hdf5'"]
    problems, _ = _problems({"data": {"augment": [{"name": "shift", "max_shfit": 3}]}})
    assert problems[0].startswith("data.augment: augmentations[0] (shift): unknown parameter")
    problems, _ = _problems({"data": {"dt": 0.7, "delay": {"n_delays": 2, "delay_ms": 30.0}}})
    assert problems[0].startswith("data.delay.delay_ms: 30.0 ms is not a whole number of steps")
    problems, _ = _problems({"model": {"taus": {"tau_m": 2.0}}})
    assert problems[0].startswith("model.taus: tau_m/tau_s: below their lower bounds")


def test_yaml_reads_exponent_floats_and_reports_syntax_errors(tmp_path):
    assert read_yaml("a: 5e-4\nb: 1E3\nc: 3\nd: .5\ne: 1_000") == {
        "a": 5e-4,
        "b": 1e3,
        "c": 3,
        "d": 0.5,
        "e": 1000,
    }
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim:\n  lr: [1, 2\n", encoding="utf-8")
    problems, text = _problems(bad)
    assert "YAML syntax error" in problems[0] and str(bad) in text


def test_overrides_parse_yaml_values_and_create_sections():
    assert parse_override("optim.lr=5e-4") == (["optim", "lr"], 5e-4)
    assert parse_override("model.hidden=[512, 128]") == (["model", "hidden"], [512, 128])
    cfg = load_config(
        "shd",
        [
            "optim.lr=5e-4",
            "model.hidden=[512]",
            "data.delay=null",
            "data.augment.0.max_shift=10",
            "train.rewire.enabled=false",
        ],
    )
    assert cfg.optim.lr == 5e-4 and cfg.model.hidden == [512] and cfg.data.delay is None
    assert cfg.data.augment[0] == {"name": "shift", "max_shift": 10}
    assert not cfg.train.rewire.enabled
    raw = apply_overrides({}, ["data.delay.n_delays=3"])
    assert raw == {"data": {"delay": {"n_delays": 3}}}
    problems, _ = _problems("yinyang", ["optim.lr"])
    assert "expected KEY=VALUE" in problems[0]
    problems, _ = _problems("yinyang", ["optim.lrr=1"])
    assert problems[0].startswith("optim.lrr: unknown key")
    problems, _ = _problems("yinyang", ["data.augment.3.name=shift"])
    assert "index 3 is outside the list" in problems[0]


def test_extends_chain_relative_file_and_cycle(tmp_path):
    (tmp_path / "base.yaml").write_text("name: base\noptim: {lr: 2.0e-3}\n", encoding="utf-8")
    (tmp_path / "child.yaml").write_text(
        "extends: base\nname: child\ntrain: {epochs: 7}\n", encoding="utf-8"
    )
    cfg = load_config(tmp_path / "child.yaml")
    assert (cfg.name, cfg.optim.lr, cfg.train.epochs) == ("child", 2e-3, 7)
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n", encoding="utf-8")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n", encoding="utf-8")
    problems, _ = _problems(tmp_path / "a.yaml")
    assert problems[0].startswith("extends: cycle")
    problems, _ = _problems("no_such_config")
    assert "no file 'no_such_config' and no built-in config" in problems[0]


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config("shd", ["seed=5", "model.taus.trainable=true"])
    path = tmp_path / "resolved.yaml"
    path.write_text(dump_config(cfg), encoding="utf-8")
    again = load_config(path)
    assert again == cfg
    assert isinstance(again, ExperimentConfig)
