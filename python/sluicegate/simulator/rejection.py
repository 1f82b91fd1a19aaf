"""How every dialect refuses a request in its own words, instead of OpenAI's.

Checks deep inside reading a request raise ``Rejected`` carrying the finished error response;
each route handler catches it and sends that response, so no check has to pass errors back up.
"""

from __future__ import annotations

from collections.abc import Callable

from sluicegate.errors import GatewayError
from sluicegate.server import Response
from sluicegate.simulator.behaviour import Behaviour, parse_behaviour


class Rejected(Exception):
    """The request gets ``response`` (an error in the dialect's own shape) instead of an answer."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def directive_behaviour(
    directive: str, header: str | None, refuse: Callable[[GatewayError], Rejected]
) -> Behaviour:
    """``parse_behaviour``, a bad directive refused by ``refuse`` in the dialect's error shape
    (a gateway must see the upstream's own error, never the simulator's OpenAI one)."""
    try:
        return parse_behaviour(directive, header)
    except GatewayError as exc:
        raise refuse(exc) from None
