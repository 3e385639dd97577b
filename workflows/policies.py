"""Timeouts and retry policies of the orchestration, named by what they protect."""

from datetime import timedelta

from temporalio.common import RetryPolicy

#: Reading a scenario or previewing targets: quick, and a bad input will not get better.
QUICK = timedelta(seconds=60)
QUICK_RETRY = RetryPolicy(maximum_attempts=3, maximum_interval=timedelta(seconds=5))

#: Injection: API errors are retried a few times; a rejected fault is non-retryable.
INJECT_TIMEOUT = timedelta(minutes=2)
INJECT_RETRY = RetryPolicy(maximum_attempts=5, maximum_interval=timedelta(seconds=10))

#: Inject, confirm and recover heartbeat while the backend works: a worker killed mid-call is
#: noticed this soon and the call retried elsewhere, not at its 2-minute start-to-close.
BACKEND_HEARTBEAT = timedelta(seconds=10)

#: Confirming a fault took hold: poll with a flat backoff until the fault's own end.
CONFIRM_TIMEOUT = timedelta(seconds=30)
#: Confirming a fault on the Temporal frontend: how long after its hold the answer may come
#: (the outage stops this worker's activities too; they run once the frontend is back).
FRONTEND_OUTAGE_GRACE = timedelta(minutes=2)
CONFIRM_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=1.0,
    maximum_interval=timedelta(seconds=1),
)

#: Recovery must happen: retried for long (the backend's own expiry bounds the fault anyway).
RECOVER_TIMEOUT = timedelta(minutes=2)
RECOVER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=15),
    maximum_attempts=40,
)

#: Probes of the system under test: heartbeating loops, retried when a dependency blips.
PROBE_HEARTBEAT = timedelta(seconds=20)
PROBE_RETRY = RetryPolicy(maximum_attempts=3, maximum_interval=timedelta(seconds=5))
