"""Fuzzing config loading with a seeded generator: every case is a valid config or a clean
:class:`~eventprop.train.config.ConfigError` -- never another exception, never a long line.

Cases (seeded): 600 structural mutations of the built-in configs (a key deleted, a value
replaced by another type, a huge or non-finite number, a deep or long value, an unknown key),
400 byte-level mutations of their YAML text (random bytes replaced, inserted, deleted, lines
swapped or truncated) and 200 ``--set`` overrides with random keys and YAML values.
"""

from __future__ import annotations

import copy
import math
import time

import numpy as np

from eventprop.train.config import (
    ConfigError,
    ExperimentConfig,
    builtin_config_path,
    dump_config,
    load_config,
    read_yaml,
)

N_STRUCTURAL, N_TEXT, N_OVERRIDES = 600, 400, 200
NAMES = ("yinyang", "shd", "shd_small", "ssc")


def _paths(tree, prefix=()):
    """Every (path) of a nested dict/list."""
    out = []
    if isinstance(tree, dict):
        for k, v in tree.items():
            out.append((*prefix, k))
            out += _paths(v, (*prefix, k))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            out.append((*prefix, i))
            out += _paths(v, (*prefix, i))
    return out


def _random_value(rng: np.random.Generator):
    choices = [
        None,
        True,
        0,
        -1,
        10**30,
        -(10**30),
        1.5,
        -0.0,
        1e308,
        math.inf,
        -math.inf,
        math.nan,
        "",
        "x" * 10_000,
        "5e-4",
        [],
        [1, 2, 3],
        list(range(5000)),
        {},
        {"a": 1},
        [[[[[[[[[[1]]]]]]]]]],
        {"k" * 200: "v"},
    ]
    return copy.deepcopy(choices[int(rng.integers(len(choices)))])


def _check(load) -> str:
    start = time.perf_counter()
    try:
        cfg = load()
    except ConfigError as exc:
        lines = str(exc).splitlines()
        assert all(len(line) <= 520 for line in lines), max(lines, key=len)[:200]
        result = "error"
    else:
        assert isinstance(cfg, ExperimentConfig)
        # a config that loads is complete and round-trips through its YAML dump
        assert load_config(read_yaml(dump_config(cfg))) == cfg
        result = "ok"
    assert time.perf_counter() - start < 5.0
    return result


def test_structural_mutations():
    rng = np.random.default_rng(11)
    bases = {n: read_yaml(builtin_config_path(n).read_text()) for n in NAMES}
    seen = {"ok": 0, "error": 0}
    for case in range(N_STRUCTURAL):
        raw = copy.deepcopy(bases[NAMES[case % len(NAMES)]])
        paths = _paths(raw)
        for _ in range(int(rng.integers(1, 4))):
            path = paths[int(rng.integers(len(paths)))]
            node = raw
            try:
                for part in path[:-1]:
                    node = node[part]
                action = int(rng.integers(3))
                if action == 0 and isinstance(node, dict):
                    node.pop(path[-1], None)
                elif action == 1 and isinstance(node, dict):
                    node[f"unknown_{case}"] = _random_value(rng)
                else:
                    node[path[-1]] = _random_value(rng)
            except (KeyError, IndexError, TypeError):
                continue  # the path vanished with an earlier mutation of this case
        seen[_check(lambda raw=raw: load_config(raw))] += 1
    assert seen["error"] > N_STRUCTURAL // 2 and seen["ok"] > 0, seen


def test_text_mutations(tmp_path):
    rng = np.random.default_rng(12)
    texts = {n: builtin_config_path(n).read_bytes() for n in NAMES}
    seen = {"ok": 0, "error": 0}
    for case in range(N_TEXT):
        data = bytearray(texts[NAMES[case % len(NAMES)]])
        kind = case % 4
        if kind == 0:
            for pos in rng.integers(0, len(data), rng.integers(1, 8)):
                data[pos] = int(rng.choice(list(b":-[]{}&*!|>'\"#%@` \t\n0123456789.ex")))
        elif kind == 1:
            pos = int(rng.integers(0, len(data)))
            data[pos:pos] = rng.bytes(int(rng.integers(1, 16)))
        elif kind == 2:
            lines = bytes(data).split(b"\n")
            i, j = rng.integers(0, len(lines), 2)
            lines[i], lines[j] = lines[j], lines[i]
            data = bytearray(b"\n".join(lines))
        else:
            data = data[: int(rng.integers(0, len(data)))]
        path = tmp_path / f"c{case}.yaml"
        path.write_bytes(bytes(data))

        def load(path=path):
            try:
                return load_config(path)
            except UnicodeDecodeError as exc:  # pragma: no cover - must be a ConfigError
                raise AssertionError(f"{path}: {exc}") from exc

        seen[_check(load)] += 1
    assert seen["error"] > 0 and seen["ok"] > 0, seen


def test_override_mutations():
    rng = np.random.default_rng(13)
    base = load_config("yinyang").model_dump(mode="json")
    keys = [".".join(map(str, p)) for p in _paths(base)] + ["nope", "model.nope", "optim..lr"]
    values = ["1", "-1", ".inf", ".nan", "[1, 2", "{a: 1}", "null", "yes", "1e400", "x" * 5000]
    values += ["&a [*a]", "!!python/object:os.system x", "2001-13-45", "[" * 50, "'unclosed"]
    seen = {"ok": 0, "error": 0}
    for _ in range(N_OVERRIDES):
        key = keys[int(rng.integers(len(keys)))]
        value = values[int(rng.integers(len(values)))]
        seen[_check(lambda key=key, value=value: load_config("yinyang", [f"{key}={value}"]))] += 1
    assert seen["error"] > N_OVERRIDES // 2, seen
