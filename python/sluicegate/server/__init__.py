"""A small HTTP/1.1 server on trio + h11. It knows nothing about LLMs.

The gateway and the simulator are both ``Handler``s: ``Request`` in, ``Response`` or
``StreamingResponse`` out; ``serve`` runs one on a port.
"""

from sluicegate.server.limits import ServerLimits
from sluicegate.server.serve import serve
from sluicegate.server.types import (
    AbortConnection,
    Handler,
    Request,
    Response,
    StreamingResponse,
)

__all__ = [
    "AbortConnection",
    "Handler",
    "Request",
    "Response",
    "ServerLimits",
    "StreamingResponse",
    "serve",
]
