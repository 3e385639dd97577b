"""The ordering checker in a second process, so that checking overlaps reading.

`activities.kafka.probe` reads with aiokafka, whose fetching and record decoding take one core;
parsing each event and walking its key's state (`EventOrderChecker.feed`) take about as much
again. On a machine with a second core, `CheckerProcess` runs the same `EventOrderChecker` in a
child process and ships it each partition's records as raw (offset, key, value) lists, so the
reader decodes the next batch while the child checks this one (bench/bench_event_order.py).

One child holds the whole state: every record goes to it in the order it was read, so its
report is the one-process report by construction (no routing by key and no merging: a record
whose key does not match its event must still meet its goal run's state).

The child is ``python -m activities.kafka.order_process``: frames on its stdin and stdout are a
4-byte big-endian length and a pickle (parent and child are the same code; nothing else writes
to the pipes: the child's stray output goes to stderr). It dies with its stdin: closing it or
killing the child is all the cleanup there is. It runs with the garbage collector off: it lives
for one check, and the checker's state has no reference cycles, so a collection would only walk
that growing state again and again (about a third of the checker's time on 1M events).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import gc
import os
import pickle
import struct
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from activities.kafka.order import EventOrderChecker
from activities.kafka.order_state import RecordLike
from models.kafka import KafkaOrderReport

_LEN = struct.Struct(">I")
#: Bytes the parent buffers for the child before it waits for the child to catch up. Small:
#: asyncio's pipe transport moves its whole buffer down after every write to the pipe.
_BUFFER_HIGH = 4 << 20
#: The pipe's own size (Linux; 64 KB by default, 1 MB is the unprivileged maximum): a frame
#: of records goes in one or two writes instead of dozens.
_PIPE_SIZE = 1 << 20
_ROOT = str(Path(__file__).resolve().parents[2])


class CheckerProcessError(RuntimeError):
    """The checking process died or answered nonsense."""


class CheckerProcess:
    """An `EventOrderChecker` in a child process, driven from asyncio.

    `feed_batch` and `restore` only queue (they never block the event loop); `drain` waits
    while the child is more than a buffer behind. `ask_state` and `report` are answered once the
    child has checked everything queued before them, in the order they were asked. Use it as an
    async context manager: on exit the child stops.
    """

    def __init__(self, goal_topic: str, step_topic: str) -> None:
        self.goal_topic, self.step_topic = goal_topic, step_topic
        self._proc: asyncio.subprocess.Process | None = None
        self._answers: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the child; it imports the checker while the parent goes on reading."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, env.get("PYTHONPATH")) if p)
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            __name__,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        stdin, stdout = self._pipes()
        _widen(stdin.transport.get_extra_info("pipe"))
        stdin.transport.set_write_buffer_limits(high=_BUFFER_HIGH)
        self._reader = asyncio.create_task(self._read_answers(stdout))
        self._send(("init", self.goal_topic, self.step_topic))

    async def __aenter__(self) -> CheckerProcess:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the child: it exits at the end of its input; killed if it does not at once."""
        proc, self._proc = self._proc, None
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
        if proc is None:
            return
        try:
            if proc.returncode is None and proc.stdin is not None:
                proc.stdin.close()
                await asyncio.wait_for(proc.wait(), 2.0)
        except TimeoutError:
            pass
        finally:
            if proc.returncode is None:
                proc.kill()
                await asyncio.shield(proc.wait())
        self._fail_pending(CheckerProcessError("the checking process was closed"))

    def feed_batch(
        self, topic: str, partition: int, records: Sequence[RecordLike], window_end: int
    ) -> None:
        """Queue one partition's records (offset order) for the child; returns at once."""
        self._send(
            (
                "batch",
                topic,
                partition,
                window_end,
                [r.offset for r in records],
                [r.key for r in records],
                [r.value for r in records],
            )
        )

    async def drain(self) -> None:
        """Wait while more than a buffer of records is queued for the child."""
        try:
            await self._pipes()[0].drain()
        except (ConnectionError, BrokenPipeError) as e:
            raise self._died(e) from e

    def restore(self, state: dict[str, Any]) -> None:
        """Resume from an earlier checker's `state()` (queued like a batch)."""
        self._send(("restore", state))

    def ask_state(self, max_keys: int) -> asyncio.Future[dict[str, Any] | None]:
        """The checker's `state()` after what is queued now; None if it holds > max_keys keys."""
        return self._ask(("state", max_keys))

    async def report(self) -> KafkaOrderReport:
        """What the child found in everything queued so far."""
        found = await self._ask(("report",))
        if not isinstance(found, KafkaOrderReport):
            raise CheckerProcessError(f"the checking process answered {type(found).__name__}")
        return found

    def _pipes(self) -> tuple[asyncio.StreamWriter, asyncio.StreamReader]:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.stdout is None:
            raise CheckerProcessError("the checking process is not running")
        return proc.stdin, proc.stdout

    def _send(self, message: tuple[Any, ...]) -> None:
        stdin = self._pipes()[0]
        if stdin.is_closing():
            raise self._died(None)
        payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        stdin.write(_LEN.pack(len(payload)))
        stdin.write(payload)

    def _ask(self, message: tuple[Any, ...]) -> asyncio.Future[Any]:
        self._send(message)
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._answers.append(answer)
        return answer

    async def _read_answers(self, stdout: asyncio.StreamReader) -> None:
        """Hand each answer to the oldest question; fail them all if the child dies."""
        try:
            while True:
                size = _LEN.unpack(await stdout.readexactly(_LEN.size))[0]
                answer = pickle.loads(await stdout.readexactly(size))  # noqa: S301  # our child
                waiting = self._answers.popleft() if self._answers else None
                if waiting is None or waiting.done():
                    continue
                if isinstance(answer, tuple) and answer[:1] == ("error",):
                    waiting.set_exception(CheckerProcessError(f"the check failed: {answer[1]}"))
                else:
                    waiting.set_result(answer)
        except (asyncio.IncompleteReadError, ConnectionError) as e:
            self._fail_pending(self._died(e))

    def _fail_pending(self, error: CheckerProcessError) -> None:
        while self._answers:
            waiting = self._answers.popleft()
            if not waiting.done():
                waiting.set_exception(error)

    def _died(self, error: BaseException | None) -> CheckerProcessError:
        code = self._proc.returncode if self._proc else None
        return CheckerProcessError(f"the checking process died (exit {code}): {error!r}")


def _widen(pipe: Any) -> None:
    """Make the pipe to the child hold `_PIPE_SIZE` bytes, where the system lets it."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)
    if pipe is None or set_size is None:
        return
    with contextlib.suppress(OSError):
        fcntl.fcntl(pipe.fileno(), set_size, _PIPE_SIZE)


def _read_exactly(stream: IO[bytes], size: int) -> bytes | None:
    data = stream.read(size)
    if not data:
        return None
    while len(data) < size:  # a pipe hands out what has arrived
        more = stream.read(size - len(data))
        if not more:
            raise EOFError("input ended inside a frame")
        data += more
    return data


def serve(inp: IO[bytes], out: IO[bytes]) -> None:
    """The child's loop: read frames until the input ends, answer the questions."""
    checker: EventOrderChecker | None = None
    while True:
        head = _read_exactly(inp, _LEN.size)
        if head is None:
            return
        body = _read_exactly(inp, _LEN.unpack(head)[0]) or b""
        message = pickle.loads(body)  # noqa: S301  # from our own parent
        kind = message[0]
        if kind == "batch":
            assert checker is not None
            _, topic, partition, window_end, offsets, keys, values = message
            # The batch loop, as the parent's `feed_batch` does: one record at a time through
            # `feed` would bind its lookups again for every record.
            rows = zip(offsets, keys, values, strict=True)
            checker.feed_rows(topic, partition, rows, window_end)
            continue
        if kind == "init":
            checker = EventOrderChecker(message[1], message[2])
            continue
        assert checker is not None
        if kind == "restore":
            checker.restore(message[1])
            continue
        answer: Any
        try:
            if kind == "state":
                answer = checker.state() if checker.keys <= message[1] else None
            elif kind == "report":
                answer = checker.report()
            else:
                answer = ("error", f"unknown message {kind!r}")
        except Exception as e:  # noqa: BLE001  # the parent raises it
            answer = ("error", repr(e))
        payload = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        out.write(_LEN.pack(len(payload)) + payload)
        out.flush()


def main() -> None:
    """Entry point of the child: frames on stdin, answers on the real stdout."""
    gc.disable()
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed by accident goes to stderr, not into the frames
    serve(sys.stdin.buffer, out)


if __name__ == "__main__":
    main()
