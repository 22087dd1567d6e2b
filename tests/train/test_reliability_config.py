"""Configs that try to exhaust memory or slip non-finite numbers past validation are refused.

The runs happen in a child process with a 1.5 GB address-space limit and a time limit, so that
a regression (building the billion-element value, or its full ``repr``) fails the test instead
of taking the machine down.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from eventprop.train.config import (
    MAX_YAML_VALUES,
    ConfigError,
    _describe,
    load_config,
    read_yaml,
)


def _bomb(levels: int = 9, key: str = "model:\n  hidden") -> str:
    """Nested anchors: 9 levels of 9 aliases -> 9**9 (387 million) strings from ~500 bytes."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    lines.append(f"{key}: *a{levels - 1}")
    return "\n".join(lines) + "\n"


def _run_limited(code: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    prelude = textwrap.dedent(
        """
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (1_500_000_000, 1_500_000_000))
        """
    )
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_alias_bomb_and_unbounded_values_are_refused_quickly(tmp_path):
    """A 1 KB alias bomb (under a typed key, a float key, an unknown key) and a bad value whose
    full repr would never finish: each refused in well under a second with a short line."""
    paths = []
    for i, key in enumerate(["model:\n  hidden", "optim:\n  lr", "unknown_key"]):
        path = tmp_path / f"bomb{i}.yaml"
        path.write_text(_bomb(key=key), encoding="utf-8")
        assert path.stat().st_size < 1500
        paths.append(str(path))
    proc = _run_limited(
        f"""
        import time
        from eventprop.train.config import ConfigError, load_config
        leaf = ["x"] * 10
        for _ in range(8):
            leaf = [leaf] * 10  # shared: a billion leaves in a few hundred bytes
        for source in [*{paths!r}, {{"optim": {{"lr": leaf}}}}]:
            t = time.perf_counter()
            try:
                load_config(source)
            except ConfigError as exc:
                print("TOOK", f"{{time.perf_counter() - t:.3f}}")
                print(exc)
        """
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    blocks = proc.stdout.split("TOOK ")[1:]
    assert len(blocks) == 4, proc.stdout[-2000:]
    for i, block in enumerate(blocks):
        took, *message = block.strip().splitlines()
        assert float(took) < 1.0, (i, took)
        assert all(len(line) < 300 for line in message)
        if i < 3:
            assert f"expands to more than {MAX_YAML_VALUES} values" in block
        else:
            assert message[-1].strip().startswith("optim.lr: expected a number, got [[[")
            assert len(message[-1]) < 120


def test_recursive_anchor_and_deep_nesting_are_refused():
    with pytest.raises(ConfigError, match="expands to more than"):
        read_yaml("a: &a [1, *a]")
    with pytest.raises(ConfigError, match="nested too deeply"):
        read_yaml("[" * 3000 + "]" * 3000)
    with pytest.raises(ConfigError, match="characters"):
        read_yaml("x" * 2_000_000)


def test_describe_is_bounded():
    start = time.perf_counter()
    text = _describe({"k": list(range(10**6)), "s": "y" * 10**6})
    assert time.perf_counter() - start < 0.5
    assert len(text) < 80 and text.endswith("(dict)")


@pytest.mark.parametrize(
    "setting",
    [
        "optim.lr=.inf",
        "optim.lr=.nan",
        "optim.eps=-.inf",
        "model.init.w_in_mean=.nan",
        "model.taus.tau_m=.inf",
        "data.dt=.inf",
        "optim.grad_clip=.inf",
        "regularizer.nu_upper=.inf",
    ],
)
def test_non_finite_floats_are_refused_naming_the_key(setting):
    key = setting.partition("=")[0]
    with pytest.raises(ConfigError) as info:
        load_config("yinyang", [setting])
    assert f"{key}: expected a finite number" in str(info.value)


def test_ordinary_configs_still_load():
    for name in ("yinyang", "shd", "shd_small", "ssc"):
        load_config(name)
    assert read_yaml("a: &x [1, 2]\nb: *x") == {"a": [1, 2], "b": [1, 2]}
