"""A small closed-loop HTTP/1.1 load generator over keep-alive connections (asyncio, raw sockets).

Every worker owns one connection and sends its next request as soon as the previous answer is
complete, so the offered load follows the server's speed. It understands exactly what the
benchmark needs: Content-Length and chunked bodies, and the arrival times of streamed chunks,
OpenAI SSE and Ollama NDJSON alike (both carry the text as a compact ``"content":"..."``).
Its own cost is the same for every target, so "added" figures (target minus direct) cancel it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field


def has_content(chunk: bytes) -> bool:
    """Whether a streamed chunk carries text: an SSE frame with a non-empty ``delta.content``
    or an NDJSON line with a non-empty ``message.content``. The empty ones (OpenAI's role chunk,
    Ollama's thinking lines and done trailer) say ``"content":""``. A byte count, not a parse,
    so the cost is the same, and small, for every target."""
    return chunk.count(b'"content":"') > chunk.count(b'"content":""')


@dataclass
class Result:
    latency: float  # seconds, request sent → body complete
    first_content: float | None = None  # seconds to the first non-empty content delta (streams)
    gaps: list[float] = field(default_factory=list)  # seconds between content chunks (streams)
    ok: bool = True


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
        return cls(reader, writer)

    def close(self) -> None:
        self.writer.close()

    async def request(self, path: str, body: bytes, *, stream: bool) -> Result:
        head = (
            f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            f"authorization: Bearer bench\r\ncontent-length: {len(body)}\r\n\r\n"
        ).encode()
        started = time.perf_counter()
        self.writer.write(head + body)
        status_line = await self.reader.readuntil(b"\r\n")
        headers = (await self.reader.readuntil(b"\r\n\r\n")).lower()
        ok = status_line.split(b" ", 2)[1] == b"200"
        first: float | None = None
        gaps: list[float] = []
        last: float | None = None
        if b"transfer-encoding: chunked" in headers:
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                data = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                now = time.perf_counter()
                if stream and has_content(data):
                    if first is None:
                        first = now - started
                    elif last is not None:
                        gaps.append(now - last)
                    last = now
        else:
            length = 0
            for line in headers.split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await self.reader.readexactly(length)
        return Result(time.perf_counter() - started, first, gaps, ok)


async def closed_loop(
    port: int,
    path: str,
    body: bytes,
    *,
    concurrency: int,
    stream: bool,
    count: int | None = None,
    seconds: float | None = None,
) -> list[Result]:
    """Run ``concurrency`` workers until ``count`` requests in total or ``seconds`` passed."""
    results: list[Result] = []
    deadline = time.perf_counter() + seconds if seconds else None
    budget = [count if count is not None else 1 << 62]

    async def worker() -> None:
        conn = await Connection.open(port)
        try:
            while budget[0] > 0 and (deadline is None or time.perf_counter() < deadline):
                budget[0] -= 1
                try:
                    results.append(await conn.request(path, body, stream=stream))
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    results.append(Result(0.0, ok=False))
                    conn.close()
                    conn = await Connection.open(port)
        finally:
            conn.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results
