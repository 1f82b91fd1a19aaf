"""``POST /v1/embeddings``: parse the OpenAI request, write the OpenAI answer.

Providers turn the parsed request into their native call and hand back vectors; this module
owns the OpenAI shapes on both sides (including ``encoding_format: "base64"``, which is the
vector's little-endian float32 bytes, as the OpenAI SDKs decode it).
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass
from typing import Any

import orjson

from sluicegate.errors import GatewayError

MAX_INPUTS = 2048  # what OpenAI accepts in one request


@dataclass(frozen=True, slots=True)
class EmbeddingsRequest:
    model: str
    inputs: list[str]
    encoding_format: str  # "float" or "base64"
    dimensions: int | None
    body: dict[str, Any]


def _invalid(message: str, param: str | None, code: str = "invalid_value") -> GatewayError:
    return GatewayError(400, message, "invalid_request_error", code, param)


def parse_embeddings_request(raw: bytes) -> EmbeddingsRequest:
    """Parse and check a request body, raising ``GatewayError`` (400) naming the field."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _invalid(
            f"The request body is not valid JSON ({exc.msg} at position {exc.pos}); send a "
            "JSON object with 'model' and 'input'.",
            None,
            "invalid_json",
        ) from None
    if not isinstance(body, dict):
        raise _invalid("The request body must be a JSON object with 'model' and 'input'.", None)
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise _invalid(
            "'model' must be a non-empty string such as 'deepinfra/BAAI/bge-base-en-v1.5'.",
            "model",
            "missing_required_parameter" if model is None else "invalid_value",
        )
    given = body.get("input")
    inputs = [given] if isinstance(given, str) else given
    if not isinstance(inputs, list) or not inputs:
        raise _invalid(
            "'input' must be a string or a non-empty array of strings.",
            "input",
            "missing_required_parameter" if given is None else "invalid_type",
        )
    if not all(isinstance(item, str) for item in inputs):
        raise _invalid(
            "'input' must hold text: arrays of token ids are not supported; send the strings.",
            "input",
            "invalid_type",
        )
    if any(not item for item in inputs):
        raise _invalid("'input' must not contain empty strings.", "input")
    if len(inputs) > MAX_INPUTS:
        raise _invalid(f"'input' has {len(inputs)} items; send at most {MAX_INPUTS}.", "input")
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise _invalid('\'encoding_format\' must be "float" or "base64".', "encoding_format")
    dimensions = body.get("dimensions")
    if dimensions is not None and (
        isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1
    ):
        raise _invalid("'dimensions' must be a positive whole number.", "dimensions")
    return EmbeddingsRequest(model.strip(), inputs, encoding, dimensions, body)


def _encode(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "float":
        return vector
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def embeddings_body(
    request: EmbeddingsRequest, vectors: list[list[float]], usage: dict[str, Any]
) -> bytes:
    """The OpenAI ``list`` of embeddings, in input order, under the name the client used."""
    data = [
        {"object": "embedding", "index": i, "embedding": _encode(vector, request.encoding_format)}
        for i, vector in enumerate(vectors)
    ]
    return orjson.dumps({"object": "list", "data": data, "model": request.model, "usage": usage})


def read_native_vectors(
    request: EmbeddingsRequest, body: bytes, unreadable: str
) -> tuple[dict[str, Any], list[list[float]]]:
    """A native answer that carries one vector per input under ``"embeddings"`` (DeepInfra,
    Ollama): the parsed answer, for the provider's own usage fields, and the vectors.

    Anything else is a 502 ``upstream_bad_response`` with the message ``unreadable``, which names
    the provider and what to do.
    """
    try:
        parsed = orjson.loads(body)
        vectors = parsed["embeddings"]
        if not isinstance(vectors, list) or len(vectors) != len(request.inputs):
            raise ValueError
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        raise GatewayError(502, unreadable, "upstream_error", "upstream_bad_response") from None
    return parsed, vectors


def reported_usage(input_tokens: int | None) -> dict[str, Any]:
    """The usage of an embeddings call from the upstream's count of input tokens; when it gave
    none, 0 flagged as an estimate (an absent count is not a zero count)."""
    usage: dict[str, Any] = {"prompt_tokens": input_tokens or 0, "total_tokens": input_tokens or 0}
    if input_tokens is None:
        usage["estimated"] = True
    return usage
