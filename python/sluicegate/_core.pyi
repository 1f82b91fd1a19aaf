"""sluicegate's Rust transcoder core: upstream bytes in, OpenAI SSE/JSON bytes out (sans-IO).

One ``StreamTranscoder`` per response. It does no I/O, reads no clock and draws no random
numbers: the caller passes ``response_id`` and ``created``. Output never depends on how the
upstream bytes were split, down to one byte at a time.
"""

from collections.abc import Sequence
from typing import Any, Final

DIALECTS: Final[tuple[str, ...]]
"""The upstream dialects a transcoder reads:
``("openai", "deepinfra", "tgi", "ollama", "anthropic")``.

``openai``: any OpenAI-compatible server; its chunks are forwarded, rewritten.
``deepinfra`` and ``tgi`` (one dialect under two names): token events, DeepInfra's native
``/v1/inference/{model}`` and TGI's ``/generate_stream`` (or their JSON bodies: DeepInfra's
``results``, TGI's ``/generate`` object and the compat route's array of them). Their text is
shaped by the generation options below (stop strings, reasoning tags, logprobs).
``ollama``: Ollama's native ``/api/chat`` and ``/api/generate``, an NDJSON stream (or, not
streaming, one JSON object).
``anthropic``: Anthropic's Messages API ``/v1/messages``, an SSE stream of named events (or, not
streaming, one ``Message`` body)."""

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

    Token-event dialects (``deepinfra``, ``tgi``), streaming: everything one ``feed`` call
    released goes out as ONE chunk whose delta holds the content and the reasoning side by side
    (``{"reasoning_content": .., "content": ..}``), with the logprob entries of the tokens behind
    that text; a read that released no text sends nothing. So the chunking follows the upstream's
    reads, while the concatenated content and reasoning, the logprob entries, the finish reason,
    usage and errors do not depend on how the bytes were split. Special tokens (EOS, end of turn)
    are never shown. The event with ``generated_text`` or ``details`` ends the answer (finish
    reason from ``details.finish_reason``: ``length`` stays ``length``, anything else is
    ``stop``); bytes after it are ignored. ``data: [DONE]`` is tolerated; before the final
    event it ends the answer with a synthesized ``stop``. An event with an ``error``,
    ``error_message`` or ``error_type`` member ends the stream with ``type="upstream_error"`` and
    ``code`` ``"upstream_overloaded"`` (TGI's ``overloaded``) or ``"upstream_stream_error"``
    (``"upstream_reported_error"`` for such a JSON body), the upstream's type and message quoted
    in ``message``. Text still held back (a possible stop string or tag) is released before any
    error, so nothing generated is lost.

    ``ollama``, streaming: the input is NDJSON (one JSON object per ``\n`` line; ``\r\n``, blank
    lines, a BOM and a last line without ``\n`` are tolerated; no SSE, no ``[DONE]``). Every line
    that carries something becomes ONE chunk, so the output bytes do not depend on how the input
    was split. Per line: ``message.thinking`` (``/api/generate``: ``thinking``) →
    ``delta.reasoning_content``, ``message.content`` (``response``) → ``delta.content``, a line
    with both is two chunks, reasoning first; lines with only empty text send nothing. Each tool
    call (``message.tool_calls[]``/``tool_calls[]``, complete in one line) → one complete
    ``delta.tool_calls`` entry ``{"index": n, "id", "type": "function", "function": {"name",
    "arguments"}}``: ``n`` counts the calls of the whole response (not Ollama's
    ``function.index``); ``id`` is Ollama's, or when it sent none ``"call_" + 8 [0-9a-z]`` derived
    from ``response_id`` ``+ "_" + n`` (deterministic: the core draws no random numbers; calls of a
    response never share one); ``arguments`` is the compact JSON text of Ollama's object, ``"{}"``
    when missing or null, a string argument as is when it is valid JSON, else JSON-encoded: always
    valid JSON. A reasoning-and-something line gets the line's logprobs on its second chunk. The
    ``"done": true`` line sends its own text/reasoning/tool calls first, then the finish:
    ``done_reason`` ``"length"`` → ``length``, anything else (``stop``, ``load``, ``unload``,
    empty, missing, unknown) → ``tool_calls`` when a tool call was sent, else ``stop``; lines after
    it are ignored. An ``{"error": "..."}`` line ends the stream with ``type="upstream_error"``,
    ``code`` ``"upstream_overloaded"`` (the message mentions overload) or
    ``"upstream_stream_error"``, the upstream's text quoted in ``message``. No done line →
    ``upstream_stream_truncated``; a line that is not an answer object →
    ``upstream_bad_response`` (truncated when the input ended inside an object's line); a line
    over 16 MiB → ``upstream_bad_response``.
    ``ollama``, not streaming: one JSON object (the ``stream: false`` answer, compact or
    pretty-printed) or NDJSON lines (merged) → one ``chat.completion`` with ``message.content``
    (``""`` for an empty answer, ``null`` when only tool calls came), ``reasoning_content`` when
    there was thinking, ``tool_calls`` (same ids and arguments), ``finish_reason`` and ``usage``.
    An ``{"error": ...}`` body → the error envelope with ``code`` ``"upstream_reported_error"``
    (or ``"upstream_overloaded"``).

    ``anthropic``, streaming: SSE with named events (``event:`` lines; without one the data's
    own ``"type"`` names the event; ``\r\n``, comments, ``data:`` without the space and spaces
    after the JSON are tolerated). Every delta that shows something becomes ONE chunk, so the
    output bytes do not depend on how the input was split. The role goes out with the first
    delta (``message_start`` sends nothing; ``ping`` neither). ``text_delta`` →
    ``delta.content``, ``thinking_delta`` → ``delta.reasoning_content`` (empty ones send
    nothing); ``signature_delta``, ``citations_delta``, ``redacted_thinking`` and server-tool
    blocks (``server_tool_use``, ``*_tool_result``) are dropped. A ``tool_use`` block start →
    ``delta.tool_calls: [{"index": n, "id": <toolu id>, "type": "function", "function":
    {"name", "arguments": ""}}]``, ``n`` counting the tool blocks of the response from 0 (not
    Anthropic's block index); each non-empty ``input_json_delta.partial_json`` →
    ``[{"index": n, "function": {"arguments": <fragment>}}]``; a tool block that streamed no
    fragment gets ``"{}"`` when it stops (or the compact JSON of the block start's own
    non-empty ``input``). ``message_delta`` gives the stop reason (``end_turn``,
    ``stop_sequence``, ``pause_turn``, unknown → ``stop``; ``max_tokens``,
    ``model_context_window_exceeded`` → ``length``; ``tool_use`` → ``tool_calls``; ``refusal``
    → ``content_filter``) and the counts; ``message_stop`` (or a ``[DONE]``) sends the finish
    (``stop`` when no stop reason came), the usage chunk (``include_usage``) and
    ``data: [DONE]``; events after it are ignored. A stream that ends after a stop reason but
    without ``message_stop`` finishes normally; one without a stop reason is
    ``upstream_stream_truncated``. An ``error`` event (or data with ``"type": "error"``) ends
    the stream with ``{"error": {"message", "type": <Anthropic's error type, e.g.
    "overloaded_error">, "param": null, "code": "upstream_overloaded" for overloaded_error,
    else "upstream_stream_error"}}``, Anthropic's message quoted in ``message``. Data that is
    not an event object → ``upstream_bad_response`` (truncated when the input ended inside it).
    ``anthropic``, not streaming: a ``Message`` body → one ``chat.completion``: text blocks
    joined into ``message.content`` (``""`` when nothing is shown, ``null`` when only tool
    calls came), thinking blocks into ``reasoning_content``, each ``tool_use`` block →
    ``tool_calls`` (``arguments`` = the compact JSON of ``input``, ``"{}"`` when empty), the
    mapped ``stop_reason``, ``usage``. An error body ``{"type": "error", "error": {...}}`` →
    the error envelope with Anthropic's ``type`` and ``code`` ``"upstream_reported_error"``
    (or ``"upstream_overloaded"``); a body without ``content`` → ``upstream_bad_response``. A
    stream is merged as above.
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
        logprobs: bool = False,
        stop: Sequence[str] = (),
        think: str = "auto",
        max_tokens: int | None = None,
        prompt_tokens: int | None = None,
        tools: str | None = None,
    ) -> None:
        """Raises ``ValueError`` (naming the known dialects) when ``dialect`` is unknown.

        The generation options are accepted by every dialect; ``openai`` reads only
        ``prompt_tokens`` (see ``usage``) and ignores the rest (its server applied them already).
        ``ollama`` reads only ``logprobs`` (Ollama's per-line
        ``logprobs`` ``[{token, logprob, bytes?, top_logprobs?}]`` become ``logprobs.content``
        entries, ``bytes`` computed from the token when absent; without it, or on a reasoning
        chunk split off a line, ``[]``; malformed entries are ``upstream_bad_response``) and
        ``prompt_tokens`` (see ``usage``); ``stop``, ``think``, ``tools`` and ``max_tokens`` are
        validated and ignored (Ollama applied them itself, and ``done_reason`` says ``length``).
        ``anthropic`` reads only ``prompt_tokens`` (see ``usage``); the others (``tools``
        included) are validated and ignored (Anthropic applied them, and reports no logprobs). For
        ``deepinfra``/``tgi``:

        - ``logprobs``: the client asked for logprobs. Each shown token gets an OpenAI entry
          ``{"token", "logprob", "bytes", "top_logprobs"}`` (``top_logprobs`` from TGI's
          ``top_tokens`` when sent, else ``[]``); tokens of a trimmed stop string get none.
          Without it chunks carry ``"logprobs": null``.
        - ``stop``: strings at which the answer ends (the client's ``stop`` plus the chat
          template's end-of-turn strings). The text is cut where the first of them starts, the
          stop string itself not shown, as OpenAI does; later text is ignored (its tokens still
          count). Only a tail that could still start a stop string is held back. Empty strings
          raise ``ValueError``.
        - ``think``: ``"auto"`` (a ``<think>`` counts when it is the first non-whitespace
          output), ``"open"`` (the prompt opened the think block, e.g. it ends with
          ``<think>\n``: output is reasoning until ``</think>``) or ``"off"`` (no tag handling).
          Reasoning goes out as ``delta.reasoning_content`` (``message.reasoning_content`` not
          streaming), never in ``content``; the whitespace after ``</think>`` is dropped. Other
          values raise ``ValueError`` listing the three.
        - ``max_tokens``: the ``max_new_tokens`` sent upstream. Only used for a JSON body that
          gives no finish reason: ``length`` when the reported completion tokens reach it (for
          several ``results``: ``max_tokens`` times their number), else ``stop``.
        - ``prompt_tokens``: the gateway's estimate of the prompt's tokens, used only when the
          upstream reports no prompt count (the usage is then marked estimated).
        - ``tools``: the tool-call markup the model writes, parsed out of the content (after
          stop strings and reasoning) into OpenAI tool calls; ``None`` (the default) leaves the
          text alone, byte for byte. Other values raise ``ValueError`` listing the four.
          ``"hermes"`` (Qwen 2.5/3, Hermes, ChatML): ``<tool_call>{"name", "arguments"}
          </tool_call>`` anywhere, several in a row. ``"llama3"``: the answer is ``{"name",
          "parameters"|"arguments"}`` (maybe after ``<|python_tag|>``, several separated by
          ``;``), decided on the first non-whitespace output: anything but ``{`` or the tag is a
          plain answer, and a JSON object with a key no call has (``name``, ``arguments``,
          ``parameters``, ``type``, ``id``) before its header went out is content.
          ``"deepseek"``: DeepSeek V3/R1's calls block, markers ``tool▁calls▁begin``,
          ``tool▁call▁begin``, ``tool▁sep``, ``tool▁call▁end``, ``tool▁calls▁end``, each between
          ``<`` + U+FF5C and U+FF5C + ``>``; per call ``function`` + sep + NAME, then the
          arguments in a json code fence (V3.1's NAME + sep + ``{...}`` too). ``"mistral"``:
          ``[TOOL_CALLS] [{"name", "arguments"}, ...]`` or ``[TOOL_CALLS]NAME[ARGS]{...}``
          anywhere, or a bare ``[{...}]`` answer (servers may drop the control token).
          Only text that could still be markup is held back. Each call goes out as
          ``delta.tool_calls``: first ``{"index": n, "id": "call_" + 8 [0-9a-z] derived from
          response_id + "_" + n, "type": "function", "function": {"name", "arguments": <what
          arrived so far, maybe "">}}`` once its name is known AND its arguments have started
          (or the call ended without any), then ``{"index": n, "function": {"arguments":
          <fragment>}}`` pieces: the raw JSON text of the arguments object as the model writes
          it, which adds up to a valid JSON object (``"{}"`` when there were none; arguments
          written as a JSON string holding an object → that object's text; ``null`` → ``"{}"``).
          ``n`` counts the answer's calls from 0; they share a read's chunk with its content.
          Whitespace around markup is dropped; text before, between and after calls is content.
          ``finish_reason`` is ``tool_calls`` when a call went out and the upstream said stop
          (or sent ``[DONE]`` without a final event, which then also sets ``finish_reason``).
          Malformed markup (not JSON, not a call's keys, an unknown shape) is content, every
          byte of it, as is markup the answer ends inside of before a header went out. A call
          that breaks after its header (bad JSON inside the arguments, or the answer ends: e.g.
          ``length``) keeps what it had: its arguments are closed so they still parse (an open
          string closed, a number or literal completed, a pending member set to ``null``,
          brackets closed), and text from the fault on is content; no error is raised (a
          ``length`` finish tells the client it was cut). Logprob entries go out with the
          chunk of the read that released their token's text; for markup that is the
          tool-call chunk (or the next chunk). Not streaming: ``message.tool_calls`` with
          complete arguments, ``content`` null when the answer was only calls.
        """

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
        ``cached_tokens: 0`` stays 0, absent fields stay absent); ``None`` if none was reported.

        Token-event dialects always have one once the answer ended, even after an error or a
        cut-off stream: ``{"prompt_tokens", "completion_tokens", "total_tokens"}`` plus
        ``"estimated_cost"`` when DeepInfra sent ``inference_status.cost`` (the number as
        written). Counts, first found wins: completion from ``inference_status.tokens_generated``,
        ``num_output_tokens``, ``num_tokens``, ``details.generated_tokens``, else the token
        events seen (for a JSON body: the entries of ``details.tokens``, else 0); prompt from
        ``inference_status.tokens_input``, ``num_input_tokens``, ``details.input_tokens``,
        ``details.input_length``, else the ``prompt_tokens`` argument, else 0. When either count
        was not reported by the upstream, ``"estimated": true`` is added.

        ``ollama`` has one too once the answer ended: ``{"prompt_tokens": prompt_eval_count,
        "completion_tokens": eval_count, "total_tokens": sum}`` from the done line; a missing
        ``prompt_eval_count`` is 0 (Ollama omits it for a fully cached prompt), a missing
        ``eval_count`` is replaced by the number of lines that carried output, with
        ``"estimated": true``. An answer ended without its done line (error, cut off, aborted):
        the ``prompt_tokens`` argument (else 0) and the lines counted, ``"estimated": true``.

        ``openai``: the upstream's own usage, untouched, whenever it sent one. An answer it sent
        none for (a server that never reports usage, a stream cut off before its usage chunk)
        has one once it ended (``[DONE]``, a finish reason, an error, a cut-off stream,
        ``abort``), provided at least one chunk with a choice went out:
        ``{"prompt_tokens": the prompt_tokens argument or 0, "completion_tokens": the chunks
        that carried output, "total_tokens": sum, "estimated": true}`` (nearly every
        OpenAI-compatible server sends one token per chunk; streaming, once output went out,
        the fast path no longer parses choices: a later chunk with choices counts, except one
        with a finish reason or usage, which is read whole and counts only with output). With
        ``include_usage`` the closing usage chunk carries it; a stream merged into one
        ``chat.completion`` carries it as ``usage``. A failed stream sends no usage chunk, as
        ever. A ``chat.completion`` JSON body without ``usage`` gets no estimate. ``None``
        while the answer is still going, or when no choice went out.

        ``anthropic`` has one once the answer ended: ``{"prompt_tokens": input_tokens +
        cache_creation_input_tokens + cache_read_input_tokens, "completion_tokens": the last
        output_tokens of message_delta (cumulative), "total_tokens": sum}``, plus
        ``"prompt_tokens_details": {"cached_tokens": cache_read_input_tokens}`` when Anthropic
        sent ``cache_read_input_tokens`` (0 stays 0) and ``"completion_tokens_details":
        {"reasoning_tokens": N}`` when it sent ``output_tokens_details.thinking_tokens``. Counts
        come from ``message_start`` and are replaced by any repeated in ``message_delta``. When
        the input count never came, the ``prompt_tokens`` argument (else 0) stands in; when no
        ``message_delta`` count came (an error, a cut-off stream, ``abort``), the deltas sent;
        either way ``"estimated": true`` is added."""

    @property
    def finish_reason(self) -> str | None:
        """The last non-null finish reason the upstream reported (``choices[0]``'s for a JSON
        body); ``None`` if it reported none, even when one was synthesized for the client.
        Token-event dialects: the mapped ``details.finish_reason`` of the final event (``stop``
        when it had no details), or the one inferred for a JSON body; ``None`` when ``[DONE]``
        or an error ended the stream. ``ollama``: the mapped ``done_reason`` (``tool_calls`` when
        a tool call was sent); ``None`` when the answer had no done line. ``anthropic``: the
        mapped ``stop_reason`` of the last ``message_delta`` that had one; ``None`` when none
        came."""

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

def aggregate(
    dialect: str,
    body: bytes,
    model: str,
    *,
    response_id: str,
    created: int,
    logprobs: bool = False,
    stop: Sequence[str] = (),
    think: str = "auto",
    max_tokens: int | None = None,
    prompt_tokens: int | None = None,
    tools: str | None = None,
) -> bytes:
    """One whole upstream answer (a JSON body or a complete stream) → one ``chat.completion``
    body or the error envelope. Same as ``StreamTranscoder(stream=False)`` + ``feed`` +
    ``finish``, with the same generation options. Raises ``ValueError`` when ``dialect`` is
    unknown or an option is invalid."""

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
