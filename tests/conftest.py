"""Shared fixtures: a simulator and gateways wired to it, on 127.0.0.1, with bounded lifetimes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial

import httpx
import pytest

from sluicegate.app import Gateway, serve_gateway
from sluicegate.config import Config, ModelAlias, ProviderConfig, ServerConfig, Timeouts
from sluicegate.simulator import SimulatorState, serve_simulator
from tests.harness import TrioThread


@dataclass
class Simulator:
    port: int
    state: SimulatorState

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="session")
def simulator() -> Iterator[Simulator]:
    state = SimulatorState()
    with TrioThread(partial(serve_simulator, "127.0.0.1", 0, state=state), lifetime=900) as port:
        yield Simulator(port, state)


def sim_provider(sim: Simulator, name: str = "sim", **timeouts: float) -> ProviderConfig:
    return ProviderConfig(
        name=name,
        kind="openai",
        base_url=f"{sim.base_url}/v1",
        api_keys=("sk-sim-test",),
        timeouts=replace(Timeouts(), **timeouts),
        source="test",
    )


@contextmanager
def running_gateway(
    providers: tuple[ProviderConfig, ...], models: tuple[ModelAlias, ...] = (), **server: object
) -> Iterator[str]:
    """Start a gateway on an ephemeral port; yields its base URL (ending in /v1)."""
    config = Config(
        server=replace(ServerConfig(port=0), **server),
        providers=providers,
        notices=(),
        path=None,
        models=models,
    )
    gateway = Gateway(config)
    with TrioThread(partial(serve_gateway, gateway, "127.0.0.1", 0)) as port:
        yield f"http://127.0.0.1:{port}/v1"


@pytest.fixture(scope="session")
def gateway_url(simulator: Simulator) -> Iterator[str]:
    with running_gateway((sim_provider(simulator),)) as url:
        yield url


@pytest.fixture
def http(gateway_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway_url.removesuffix("/v1"), timeout=30) as client:
        yield client
