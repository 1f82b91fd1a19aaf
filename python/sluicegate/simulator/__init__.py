"""A local stand-in for LLM providers, speaking their native dialects.

Each answer is planned as a dialect-neutral ``Script`` (from the ``#sim`` directive in the last
user message, or the ``x-sim`` header) and rendered by one module per dialect. Tests, the demo
and the benchmarks run against it, so nothing needs the internet.
"""

from sluicegate.simulator.app import make_simulator_handler, serve_simulator
from sluicegate.simulator.behaviour import Behaviour, parse_behaviour
from sluicegate.simulator.script import WORDS, token_text
from sluicegate.simulator.state import SimulatorState

__all__ = [
    "WORDS",
    "Behaviour",
    "SimulatorState",
    "make_simulator_handler",
    "parse_behaviour",
    "serve_simulator",
    "token_text",
]
