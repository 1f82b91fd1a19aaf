"""The one error envelope every sluicegate error uses.

OpenAI clients read ``{"error": {"message", "type", "param", "code"}}`` and map the HTTP status to
an exception class, so the status matters as much as the body. Messages must tell the user what
to do next and must never carry a secret (keys, auth headers).
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson


def error_body(
    message: str,
    type: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
) -> bytes:
    """Serialise the OpenAI error envelope."""
    return orjson.dumps({"error": {"message": message, "type": type, "param": param, "code": code}})


@dataclass(slots=True)
class GatewayError(Exception):
    """An error answered to the client as the OpenAI envelope with ``status``.

    Raised anywhere below the request handler; the handler turns it into the response.
    ``headers`` carries extras such as ``Retry-After``.
    """

    status: int
    message: str
    type: str = "invalid_request_error"
    code: str | None = None
    param: str | None = None
    headers: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        return self.message

    def body(self) -> bytes:
        return error_body(self.message, self.type, self.code, self.param)
