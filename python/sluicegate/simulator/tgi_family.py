"""What TGI and DeepInfra's fork of it share: token stand-ins and the token-event stream.

Both answer a rendered prompt with one SSE event per generated token; the last event carries
the full ``generated_text`` (and, when asked, the finish details). They differ only in framing
(``data:`` vs ``data: ``, compact JSON vs Python's spacing), in the fields of each event and in
how they report an error, so ``TokenEventRenderer`` walks the script once for both and leaves
those choices to a small subclass per dialect.

Neither API has a ``tools`` field: a model calls a tool by writing its family's markup as plain
text; ``tool_markup.py`` writes that markup for ``#sim tool=1``.
"""

from __future__ import annotations

from typing import Any

from sluicegate.simulator.behaviour import Behaviour
from sluicegate.simulator.script import (
    Delay,
    End,
    Finish,
    Garbage,
    Script,
    Start,
    Step,
    StreamError,
    Text,
)

FIRST_TOKEN_ID = 1000
EOS_TOKEN_ID = 128009  # Llama 3's <|eot_id|>; a real server reports the model's own id
GARBAGE_EVENT = b"{this is not JSON"
# The end-of-turn token a model of each template family ends its answer with, found by a
# marker of the family's template in the prompt; the first match wins.
_EOS_BY_TEMPLATE = (("<|start_header_id|>", "<|eot_id|>"), ("<|im_start|>", "<|im_end|>"))
_DEFAULT_EOS = "</s>"


def eos_text(prompt: str) -> str:
    """The end-of-turn token a model answering ``prompt`` ends with, by its template family."""
    for marker, eos in _EOS_BY_TEMPLATE:
        if marker in prompt:
            return eos
    return _DEFAULT_EOS


def input_tokens(text: str) -> int:
    """A deterministic stand-in for a tokenizer: one token per word, at least one."""
    return max(1, len(text.split()))


def planned_runtime_ms(script: Script) -> int:
    """What the script's delays add up to, so reported timings stay deterministic."""
    return round(sum(step.seconds for step in script if isinstance(step, Delay)) * 1000)


def generated_tokens(finish: Finish) -> int:
    """Token events of an answer: an EOS token ends it unless a limit or stop string did."""
    return finish.usage.completion_tokens + (1 if finish.reason == "stop" else 0)


def native_finish_reason(reason: str) -> str:
    return "eos_token" if reason == "stop" else reason  # "length" and "stop_sequence" as is


def token(
    index: int, text: str, *, special: bool = False, token_id: int | None = None
) -> dict[str, Any]:
    """A token object with a deterministic id and logprob."""
    return {
        "id": FIRST_TOKEN_ID + index if token_id is None else token_id,
        "text": text,
        "logprob": -round(0.05 * (index % 7 + 1), 4),
        "special": special,
    }


def eos_token(index: int, text: str) -> dict[str, Any]:
    return token(index, text, special=True, token_id=EOS_TOKEN_ID)


class TokenEventRenderer:
    """Script steps to token events for one answer; subclasses shape and frame each event.

    It reads the whole script first: the final fields ride on the last real token when the
    answer ends by length or stop string, and that token must not wait for the next step
    (a delay would hold it back). An answer that ends by EOS gets a special EOS token as its
    final event.
    """

    data_prefix = b"data:"
    keep_alive = b":"  # the comment line sent between events with ``#sim ping=1``

    def __init__(self, script: Script, eos: str, behaviour: Behaviour) -> None:
        self._eos = eos
        self._ping = behaviour.ping
        self._newline = b"\r\n" if behaviour.crlf else b"\n"
        finish = next((step for step in script if isinstance(step, Finish)), None)
        texts = sum(isinstance(step, Text) for step in script)
        ends_on_token = finish is not None and finish.reason != "stop" and texts > 0
        self._final_index = texts - 1 if ends_on_token else None
        self._finish = finish
        self._text: list[str] = []
        self._frames = 0

    @property
    def text(self) -> str:
        """The text generated so far (the final event's ``generated_text``)."""
        return "".join(self._text)

    def frame(self, payload: bytes) -> bytes:
        end = self._newline
        ping = self.keep_alive + end + end if self._ping and self._frames else b""
        self._frames += 1
        return ping + self.data_prefix + payload + end + end

    def render(self, step: Step) -> bytes:
        if isinstance(step, Start):
            return b""
        if isinstance(step, Text):
            index = len(self._text)
            self._text.append(step.text)
            if index == self._final_index and self._finish is not None:
                return self.frame(self.final_event(index, token(index, step.text), self._finish))
            return self.frame(self.token_event(index, token(index, step.text)))
        if isinstance(step, Finish):
            if self._final_index is not None:
                return b""  # the final fields went out with the last token
            index = len(self._text)
            return self.frame(self.final_event(index, eos_token(index, self._eos), step))
        if isinstance(step, StreamError):
            return self.frame(self.error_event(step.message))
        if isinstance(step, Garbage):
            return self.frame(GARBAGE_EVENT)
        if isinstance(step, End):
            return self.end()
        raise TypeError(f"{type(self).__name__} has no rendering for {step!r}")

    # What each dialect decides: the payload of each kind of event, and how a stream ends.

    def token_event(self, index: int, token: dict[str, Any]) -> bytes:
        raise NotImplementedError

    def final_event(self, index: int, token: dict[str, Any], finish: Finish) -> bytes:
        raise NotImplementedError

    def error_event(self, message: str) -> bytes:
        raise NotImplementedError

    def end(self) -> bytes:
        return b""  # neither TGI nor DeepInfra's fork sends [DONE]
