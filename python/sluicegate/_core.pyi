"""sluicegate's Rust transcoder core: upstream bytes in, OpenAI SSE/JSON bytes out (sans-IO).

One ``StreamTranscoder`` per response. It does no I/O, reads no clock and draws no random
numbers: the caller passes ``response_id`` and ``created``. Output never depends on how the
upstream bytes were split, down to one byte at a time.
"""

from collections.abc import Sequence
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

BUILTIN_FAMILIES: Final[tuple[str, ...]]
"""The built-in chat template families, e.g. ``("llama3", "chatml", "qwen3", "deepseek", ...)``."""

class ChatTemplate:
    """A Hugging Face chat template, compiled once, rendered once per request.

    Renders as transformers' ``apply_chat_template`` does (jinja2 with ``trim_blocks``,
    ``lstrip_blocks``, loop controls, Python string/dict methods, ``tojson`` =
    ``json.dumps(ensure_ascii=False)``), with the variables ``messages``, ``tools`` (``None``
    when absent), ``documents`` (``None``), ``add_generation_prompt``, ``bos_token``,
    ``eos_token`` and the extras. ``raise_exception(msg)`` and ``strftime_now(fmt)`` are globals;
    ``strftime_now`` uses UTC (transformers uses the host's local time) — pass a ``date_string``
    extra for a fixed date, the templates that print a date consult it first. Immutable: one
    instance can serve every request for a model, from any thread.
    """

    def __init__(
        self,
        source: str,
        *,
        bos_token: str = "",
        eos_token: str = "",
        stop: Sequence[str] = (),
        name: str = "custom",
    ) -> None:
        """Compiles ``source``. Raises ``ValueError`` naming the template, the line and the
        problem when it is not valid template syntax, or when a stop string is empty."""

    @staticmethod
    def builtin(
        family: str,
        *,
        bos_token: str | None = None,
        eos_token: str | None = None,
        stop: Sequence[str] = (),
    ) -> ChatTemplate:
        """The built-in template of ``family`` (see ``BUILTIN_FAMILIES``), optionally with other
        special tokens and extra stop strings (appended to the family's). Raises ``ValueError``
        listing the families when ``family`` is unknown."""

    @staticmethod
    def for_model(model_id: str) -> ChatTemplate | None:
        """The built-in template whose family matches ``model_id`` (case-insensitive, e.g.
        ``"meta-llama/Meta-Llama-3.1-8B-Instruct"`` → ``llama3``), or ``None``."""

    @property
    def name(self) -> str:
        """The family name, or the ``name`` given (``"custom"`` by default)."""

    @property
    def stop(self) -> list[str]:
        """The template's end-of-turn strings, then the extra stop strings, without duplicates
        (e.g. ``["<|eot_id|>", "<|eom_id|>"]``); add them to the upstream's ``stop`` list."""

    @property
    def bos_token(self) -> str:
        """The ``bos_token`` the template is rendered with (it writes it into the prompt)."""

    @property
    def eos_token(self) -> str:
        """The ``eos_token`` the template is rendered with."""

    def render(
        self,
        messages_json: bytes,
        *,
        add_generation_prompt: bool = True,
        tools_json: bytes | None = None,
        extra_json: bytes | None = None,
    ) -> str:
        """The prompt for a conversation. ``messages_json``: a JSON array of OpenAI messages;
        ``tools_json``: a JSON array of tools or ``None``; ``extra_json``: a JSON object of extra
        template variables (e.g. ``{"enable_thinking": false}``), which may override
        ``bos_token``/``eos_token`` but not ``messages``, ``tools``, ``documents`` or
        ``add_generation_prompt``. Raises ``ValueError`` with the template's own message when
        it calls ``raise_exception`` (e.g. roles out of order), and a message naming the input
        or the template line for any other failure."""
