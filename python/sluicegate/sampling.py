"""The sampling knobs native text-generation APIs take, with the ranges they accept.

One table serves the request check (a client's ``top_k``) and the config check (a model's default
``params``), so both reject the same values with the same words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Knob:
    integer: bool
    low: float
    high: float  # math.inf: no upper bound

    def describe(self) -> str:
        what = "a whole number" if self.integer else "a number"
        if self.high == math.inf:
            return f"{what} of at least {self.low:g}"
        return f"{what} between {self.low:g} and {self.high:g}"


# OpenAI request field -> what the native API accepts (PROTOCOLS.md §1.2; DeepInfra's schema).
KNOBS: dict[str, Knob] = {
    "temperature": Knob(False, 0, 2),
    "top_p": Knob(False, 0, 1),
    "top_k": Knob(True, 0, 100_000),
    "min_p": Knob(False, 0, 1),
    "repetition_penalty": Knob(False, 0.01, 5),
    "presence_penalty": Knob(False, -2, 2),
    "frequency_penalty": Knob(False, -2, 2),
    "seed": Knob(True, -(2**63), 2**64 - 1),
    "max_new_tokens": Knob(True, 1, math.inf),
}


def knob_problem(name: str, value: object) -> str | None:
    """Why ``value`` is not acceptable for knob ``name`` (a phrase), or None when it is."""
    knob = KNOBS[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"must be {knob.describe()}"
    if knob.integer and not isinstance(value, int):
        return f"is {value!r}; it must be {knob.describe()}"
    if not (math.isfinite(value) and knob.low <= value <= knob.high):
        return f"is {value!r}; it must be {knob.describe()}"
    return None
