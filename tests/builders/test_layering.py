"""The package's layers: the loading pipeline (``eventprop.data``) and the cochlea
(``eventprop.audio``) never import the dataset builders, and ``data`` never imports the cochlea,
so loading SHD files does not depend on the audio stack."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "eventprop"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("data", ("eventprop.audio", "eventprop.builders")), ("audio", ("eventprop.builders",))],
)
def test_lower_layers_do_not_import_upwards(package, forbidden):
    files = sorted((SRC / package).rglob("*.py"))
    assert files, f"no modules under {SRC / package}"
    offending = [
        f"{f.relative_to(SRC)} imports {name}"
        for f in files
        for name in sorted(_imports(f))
        if name.startswith(forbidden)
    ]
    assert not offending, "; ".join(offending)
