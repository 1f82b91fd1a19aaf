"""A simulator of its own per test module, and the readers its native streams need.

Importing ``module_simulator`` (and ``simulator_base``, ``simulator_state``, ``simulator_http``)
into a test module gives it the fixtures ``sim``, ``base``, ``state`` and ``http``: one simulator
(and its ``SimulatorState``) for the whole module, so a module's request counts start from
nothing. They must be imported into the module, not left to conftest.py, whose gateway-facing
fixtures of the same names they override; the function names differ from the fixture names so
that a test's ``http`` parameter does not shadow an import.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial

import httpx
import pytest

from sluicegate.simulator import SimulatorState, serve_simulator
from tests.harness import TrioThread

WAIT = 10.0


@pytest.fixture(scope="module", name="sim")
def module_simulator() -> Iterator[tuple[str, SimulatorState]]:
    state = SimulatorState()
    with TrioThread(partial(serve_simulator, "127.0.0.1", 0, state=state)) as port:
        yield f"http://127.0.0.1:{port}", state


@pytest.fixture(name="base")
def simulator_base(sim: tuple[str, SimulatorState]) -> str:
    return sim[0]


@pytest.fixture(name="state")
def simulator_state(sim: tuple[str, SimulatorState]) -> SimulatorState:
    return sim[1]


@pytest.fixture(name="http")
def simulator_http(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=WAIT) as client:
        yield client


def data_events(raw: bytes, prefix: bytes) -> list[dict]:
    """The JSON events of an SSE stream whose data lines start with ``prefix`` (TGI writes
    ``data:``, DeepInfra ``data: ``); comments and ``[DONE]`` are left out."""
    frames = [f for f in raw.split(b"\n\n") if f.startswith(prefix)]
    return [json.loads(f.removeprefix(prefix)) for f in frames if f != prefix + b"[DONE]"]


def llama_prompt(user: str) -> str:
    """``user``'s turn rendered with Llama 3's chat template, ready for the assistant's answer."""
    return (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
        f"{user}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    )
