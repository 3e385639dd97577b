"""Benchmark: the Kafka ordering check against a plain consumer reading the same events.

Starts its own single-node Kafka broker (devstack.kafka, in a temporary directory), produces
``--events`` ByteBot events (goal runs of ``--steps`` steps, ``--concurrency`` of them
interleaved, goal events keyed by goalRunId, step events keyed ``<goalRunId>-<stepNumber>``,
partitioned like the Java client), then in the same run times

1. a plain aiokafka consumer (the same group-less consumer settings) reading both topics
   without looking at the records;
2. the ordering check: the real ``check_kafka_events`` activity (run in an
   ActivityEnvironment), which parses and checks every event, reads the lag, heartbeats and
   returns once every goal run has ended;
3. the pure checker (``EventOrderChecker.feed``) on the same events held in memory.

It prints events per second of each (min/median/max) and the ratio check / plain (higher is
better; 1.0 means the check reads as fast as a consumer that does nothing), and the check's
memory growth.

    .venv/bin/python bench/bench_event_order.py           # 1,000,000 events, 5 rounds
    .venv/bin/python bench/bench_event_order.py --quick   # 100,000 events, 3 rounds

The plain read and the check alternate, round by round, in one process; the ratio is taken
per round. The last line is the JSON figures (bench/common.py).

Needs java and mvn on PATH (the broker's jars are resolved once into ~/.cache). Exits 1 if
the check finds anything wrong in the valid stream it produced.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiokafka import AIOKafkaProducer, TopicPartition  # noqa: E402
from aiokafka.partitioner import DefaultPartitioner  # noqa: E402
from temporalio.testing import ActivityEnvironment  # noqa: E402

from activities.kafka.order import EventOrderChecker  # noqa: E402
from activities.kafka.probe import KafkaProbeActivities, reader_consumer  # noqa: E402
from bench.common import Samples, alternate, emit, figures, quiet_logs, rounds_of, table  # noqa: E402
from bench.common import parser as bench_parser  # noqa: E402
from devstack.kafka import KafkaBroker  # noqa: E402
from models.kafka import KafkaCheckInput, KafkaPositions, PartitionOffset  # noqa: E402
from models.scenario import KafkaTarget  # noqa: E402

GOAL_TOPIC, STEP_TOPIC = "bench.goal.events", "bench.step.events"
_ID_NS = uuid.UUID("6f1b7c52-3f5e-4e5b-9a59-2d6cbbd1e0a1")

Event = tuple[str, bytes, bytes]  # topic, key, value


def generate(events: int, steps: int, concurrency: int) -> Iterator[Event]:
    """A valid stream: `concurrency` goal runs interleaved, each run ends; about `events` long."""
    ts, emitted, next_run = 0, 0, 0
    plan = [("GOAL_STARTED", None)]
    plan += [(t, n) for n in range(1, steps + 1) for t in ("STEP_STARTED", "STEP_COMPLETED")]
    plan += [("GOAL_COMPLETED", None)]
    active: list[list[object]] = []
    while active or emitted < events:
        while emitted < events and len(active) < concurrency:
            active.append([f"goal-{next_run:09d}", 0])
            next_run += 1
        for run in list(active):
            gid, i = str(run[0]), int(run[1])  # type: ignore[call-overload]
            etype, step = plan[i]
            ts += 1
            key = gid if step is None else f"{gid}-{step}"
            eid = uuid.uuid5(_ID_NS, f"{gid}/{etype}/{step}")
            s, ms = divmod(ts, 1000)
            stamp = f"2026-12-01T{s // 3600 % 24:02d}:{s // 60 % 60:02d}:{s % 60:02d}.{ms:03d}Z"
            number = "" if step is None else f'"stepNumber":{step},'
            value = (
                f'{{"eventId":"{eid}","eventType":"{etype}","goalRunId":"{gid}",'
                f'"tenantId":"tenant-bench",{number}"timestamp":"{stamp}",'
                f'"payload":{{"attempt":1,"producer":"replica-0"}}}}'
            )
            yield (GOAL_TOPIC if step is None else STEP_TOPIC), key.encode(), value.encode()
            emitted += 1
            run[1] = i + 1
            if i + 1 == len(plan):
                active.remove(run)


async def produce(bootstrap: str, stream: Iterator[Event], partitions: int) -> int:
    """Write the stream in large batches, partitioned by key as the Java client does."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks=1,
        max_batch_size=512 << 10,
        max_request_size=4 << 20,
        linger_ms=50,
    )
    await producer.start()
    partitioner, parts = DefaultPartitioner(), list(range(partitions))
    builders: dict[tuple[str, int], object] = {}
    in_flight: list[asyncio.Future[object]] = []
    count = 0

    async def ship(topic: str, partition: int, batch: object) -> None:
        in_flight.append(await producer.send_batch(batch, topic, partition=partition))
        if len(in_flight) > 32:
            await in_flight.pop(0)

    try:
        for topic, key, value in stream:
            partition = partitioner(key, parts, parts)
            batch = builders.get((topic, partition))
            if batch is None:
                batch = builders[(topic, partition)] = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None) is None:  # type: ignore[attr-defined]
                await ship(topic, partition, batch)
                batch = builders[(topic, partition)] = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)  # type: ignore[attr-defined]
            count += 1
        for (topic, partition), batch in builders.items():
            await ship(topic, partition, batch)
        await asyncio.gather(*in_flight)
    finally:
        await producer.stop()
    return count


async def plain_read(bootstrap: str, tps: list[TopicPartition], total: int) -> float:
    """Seconds a consumer with the check's settings takes to read `total` records, unchecked."""
    t0 = time.perf_counter()
    consumer = reader_consumer(bootstrap)
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen = 0
        while seen < total:
            batches = await consumer.getmany(timeout_ms=500)
            seen += sum(len(records) for records in batches.values())
    finally:
        await consumer.stop()
    return time.perf_counter() - t0


def rss_mb() -> float:
    """This process's resident memory now, in MB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


async def checked_read(bootstrap: str, tps: list[TopicPartition]) -> tuple[float, float, int, bool]:
    """Seconds the check activity takes over the whole topics; its RSS growth; events; clean."""
    target = KafkaTarget(
        bootstrap=bootstrap,
        goal_topic=GOAL_TOPIC,
        step_topic=STEP_TOPIC,
        consumer_group="bench-no-such-group",
    )
    start = KafkaPositions(
        at=datetime.now(UTC) - timedelta(days=1),
        end_offsets=[
            PartitionOffset(topic=tp.topic, partition=tp.partition, offset=0) for tp in tps
        ],
    )
    request = KafkaCheckInput(
        kafka=target, start=start, deadline=datetime.now(UTC) + timedelta(minutes=10)
    )
    probe = KafkaProbeActivities(bootstrap)
    base, peak = rss_mb(), 0.0

    async def sample() -> None:
        nonlocal peak
        while True:
            peak = max(peak, rss_mb())
            await asyncio.sleep(0.2)

    sampler = asyncio.create_task(sample())
    t0 = time.perf_counter()
    report = await ActivityEnvironment().run(probe.check_kafka_events, request)
    elapsed = time.perf_counter() - t0
    sampler.cancel()
    clean = not (
        report.violations_total
        or report.duplicates
        or report.unparseable
        or report.no_terminal_total
        or report.no_start_total
        or report.lost_step_events_total
    )
    return elapsed, max(peak, rss_mb()) - base, report.events_read, clean


def pure_check(events: int, args: argparse.Namespace) -> float:
    """Events per second of the checker alone, fed from memory in chunks."""
    checker = EventOrderChecker(GOAL_TOPIC, STEP_TOPIC)
    stream, elapsed, n, chunk = generate(events, args.steps, args.concurrency), 0.0, 0, []
    while True:
        chunk = [e for _, e in zip(range(100_000), stream, strict=False)]
        if not chunk:
            break
        t0 = time.perf_counter()
        for i, (topic, key, value) in enumerate(chunk, n):
            checker.feed(topic, 0, i, key, value)
        elapsed += time.perf_counter() - t0
        n += len(chunk)
    t0 = time.perf_counter()
    checker.report()
    return n / (elapsed + time.perf_counter() - t0)


async def main(args: argparse.Namespace) -> int:
    quiet_logs()
    events = args.events or (100_000 if args.quick else 1_000_000)
    rounds = rounds_of(args)
    with (
        tempfile.TemporaryDirectory(prefix="bench-kafka-") as tmp,
        KafkaBroker(tmp, num_partitions=args.partitions, heap="1g") as broker,
    ):
        bootstrap = broker.bootstrap_direct
        await broker.create_topics([GOAL_TOPIC, STEP_TOPIC])
        t0 = time.perf_counter()
        total = await produce(
            bootstrap, generate(events, args.steps, args.concurrency), args.partitions
        )
        print(
            f"produced {total:,} events in {time.perf_counter() - t0:.1f}s "
            f"({args.steps} steps per goal run, {args.concurrency} interleaved, "
            f"{args.partitions} partitions per topic); {rounds} rounds, sides alternating"
        )
        tps = [
            TopicPartition(t, p) for t in (GOAL_TOPIC, STEP_TOPIC) for p in range(args.partitions)
        ]
        await plain_read(bootstrap, tps, total)  # warm the page cache and the broker's JIT
        failures: list[str] = []
        grew: list[float] = []

        async def plain() -> float:
            return total / await plain_read(bootstrap, tps, total)

        async def check() -> float:
            check_s, grew_mb, read, clean = await checked_read(bootstrap, tps)
            grew.append(grew_mb)
            if read != total or not clean:
                failures.append(f"read {read:,} of {total:,}, clean={clean}")
            return read / check_s

        samples = await alternate(
            {"plain": plain, "check": check},
            rounds,
            Samples({"plain": "events/s", "check": "events/s"}),
        )
    pure = pure_check(events, args)
    print(table(samples, ("check", "plain")))
    print(f"checker alone  : {pure:12,.0f} events/s (in memory, no Kafka)")
    print(f"check RSS growth at peak: {max(grew):.0f} MB")
    emit(
        figures(
            "event-order",
            samples,
            ("check", "plain"),
            {
                "events": total,
                "steps": args.steps,
                "concurrency": args.concurrency,
                "partitions": args.partitions,
                "rounds": rounds,
            },
            {
                "checker_alone_events_per_s": round(pure),
                "rss_growth_mb_max": round(max(grew)),
                "target_ratio": 0.5,
            },
        )
    )
    if failures:
        print(f"FAILED: the check on a valid stream: {failures[0]}", file=sys.stderr)
        return 1
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = bench_parser(__doc__.split("\n\n")[0], rounds=5, quick_rounds=3)
    parser.add_argument("--events", type=int, default=None, help="events (1M; 100k --quick)")
    parser.add_argument("--steps", type=int, default=8, help="steps per goal run")
    parser.add_argument("--concurrency", type=int, default=200, help="goal runs interleaved")
    parser.add_argument("--partitions", type=int, default=3, help="partitions per topic")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
