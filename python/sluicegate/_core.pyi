"""sluicegate's Rust transcoder core: upstream bytes in, OpenAI SSE/JSON bytes out (sans-IO).

One ``StreamTranscoder`` per response. It does no I/O, reads no clock and draws no random
numbers: the caller passes ``response_id`` and ``created``. Output never depends on how the
upstream bytes were split, down to one byte at a time.
"""

from typing import Any, Final

DIALECTS: Final[tuple[str, ...]]
"""The upstream dialects a transcoder reads, e.g. ``("openai",)``."""

class StreamTranscoder:
    """Turns one upstream answer into the OpenAI answer the client asked for.

    ``stream=True``: ``feed`` returns the complete ``data: <json>\\n\\n`` frames each upstream
    read finished, ``finish`` the closing frames. Every chunk gets ``id=response_id``,
    ``created``, ``model`` (the name the client asked for) and ``object="chat.completion.chunk"``;
    the upstream's ``usage`` is lifted out and, with ``include_usage``, sent once in a
    ``choices: []`` chunk before ``data: [DONE]``. ``data: [DONE]`` goes out exactly once per
    response, also after an upstream error (sent as ``data: {"error": {...}}``) or a stream the
    upstream cut short.

    ``stream=False``: ``feed`` buffers and returns ``b""``; ``finish`` returns one body: the
    upstream's ``chat.completion`` rewritten, a stream merged into one ``chat.completion``, or
    the error envelope ``{"error": {"message", "type", "param", "code"}}`` (then ``error`` is set).
    """

    def __init__(
        self,
        dialect: str,
        model: str,
        *,
        response_id: str,
        created: int,
        stream: bool = True,
        include_usage: bool = False,
    ) -> None:
        """Raises ``ValueError`` (naming the known dialects) when ``dialect`` is unknown."""

    def feed(self, chunk: bytes) -> bytes:
        """Reads one upstream read; returns the OpenAI frames it completed (maybe ``b""``).

        Returns ``b""`` and ignores ``chunk`` once ``done`` is true.
        """

    def finish(self) -> bytes:
        """The upstream has no more bytes: returns the closing output (``b""`` if already sent).

        A stream that ended with neither ``[DONE]`` nor a finish reason ends with an
        ``upstream_stream_truncated`` error.
        """

    def abort(self, message: str, type: str = "upstream_error", code: str | None = None) -> bytes:
        """Ends the response now with this error (e.g. the upstream went quiet or the connection
        broke), unless it already ended; returns the closing output like ``finish``.

        ``message`` goes to the client: it must say what to do and must not contain secrets.
        """

    @property
    def usage(self) -> dict[str, Any] | None:
        """The upstream's last reported usage object (OpenAI shape, values exactly as sent:
        ``cached_tokens: 0`` stays 0, absent fields stay absent); ``None`` if none was reported."""

    @property
    def finish_reason(self) -> str | None:
        """The last non-null finish reason the upstream reported (``choices[0]``'s for a JSON
        body); ``None`` if it reported none, even when one was synthesized for the client."""

    @property
    def content_emitted(self) -> bool:
        """Whether any non-empty content, reasoning, refusal or tool-call delta went out: after
        that, a failure can no longer fall back to another route without duplicating text."""

    @property
    def error(self) -> dict[str, Any] | None:
        """The OpenAI error object (``message``, ``type``, ``param``, ``code``) the response
        ended with, or ``None``."""

    @property
    def done(self) -> bool:
        """The closing output has been produced; further ``feed`` calls return ``b""``."""

def aggregate(dialect: str, body: bytes, model: str, *, response_id: str, created: int) -> bytes:
    """One whole upstream answer (a JSON body or a complete stream) → one ``chat.completion``
    body or the error envelope. Same as ``StreamTranscoder(stream=False)`` + ``feed`` +
    ``finish``. Raises ``ValueError`` when ``dialect`` is unknown."""
