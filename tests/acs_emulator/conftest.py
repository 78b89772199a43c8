"""Fixtures of the twin network tests (``guardian twin --serve-network`` processes)."""

from __future__ import annotations

from pathlib import Path

import pytest
from twin_network import SPEED, Network


@pytest.fixture
def network_factory(tmp_path):
    nets: list[Network] = []

    def make(scenario: Path, seed: int, hours: float = 8.0, speed: float = SPEED,
             extra: tuple[str, ...] = ()) -> Network:  # fmt: skip
        nets.append(Network(tmp_path, scenario, seed, hours, speed, extra))
        return nets[-1]

    yield make
    for n in nets:
        if n.proc.poll() is None:
            n.proc.kill()
            n.proc.communicate(timeout=30)
