"""Shared fixtures of the cochlea tests."""

from __future__ import annotations

import pytest

from eventprop.audio import Cochlea


@pytest.fixture(scope="session")
def cochlea64() -> Cochlea:
    """A 64-channel cochlea (its membrane table takes ~0.2 s to build)."""
    return Cochlea(64)
