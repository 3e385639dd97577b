"""The OOM helper: drives a replica's memory cgroup over its limit so the kernel OOM-kills it.

    python -m faultproxy.oom --victim PID --limit-bytes N --timeout-s S

Started inside the replica's memory cgroup (see `procs.spawn_detached`). It asks to be spared
by the OOM killer (``oom_score_adj`` -1000, where allowed) and makes the victim its first
choice (1000, which outweighs the size of anything else in the cgroup),
then allocates and touches memory in chunks. Once the cgroup's charge passes its limit the
kernel kills the victim (a real OOM kill: exit 137, the cgroup's ``oom_kill`` count rises) and
the helper exits, freeing what it held. A cgroup v1 limit cannot simply be lowered below its
usage (the write fails with EBUSY rather than killing), hence this route.

Safety: the helper never holds more than the limit minus `RESERVE_BYTES` on its own, so it can
never be the only thing over the limit; it gives up after ``--timeout-s`` and then restores the
victim's ``oom_score_adj``. It prints one JSON line with what happened and exits 0 if the
victim died, 3 if not.
"""

from __future__ import annotations

import argparse
import json
import mmap
import sys
import time

from faultproxy import procs

CHUNK_BYTES = 8 * 1024 * 1024
RESERVE_BYTES = 16 * 1024 * 1024
PAGE = mmap.PAGESIZE
EXIT_VICTIM_SURVIVED = 3


def drive(victim: int, limit_bytes: int, timeout_s: float) -> dict[str, object]:
    """Allocate until the victim dies, the safety cap is reached, or the time is up."""
    _protect_self()
    previous_adj = procs.oom_score_adj(victim)
    procs.set_oom_score_adj(victim, 1000)
    held: list[mmap.mmap] = []
    allocated = 0
    started = time.monotonic()
    cap = max(limit_bytes - RESERVE_BYTES, 0)
    while procs.alive(victim) and allocated + CHUNK_BYTES <= cap:
        if time.monotonic() - started > timeout_s:
            break
        chunk = mmap.mmap(-1, CHUNK_BYTES)
        for offset in range(0, CHUNK_BYTES, PAGE):  # touch every page: charge it now
            chunk[offset] = 1
        held.append(chunk)
        allocated += CHUNK_BYTES
    deadline = time.monotonic() + 1.0  # the kill lands a moment after the charge
    while procs.alive(victim) and time.monotonic() < deadline:
        time.sleep(0.02)
    victim_died = not procs.alive(victim)
    if not victim_died and previous_adj is not None:
        procs.set_oom_score_adj(victim, previous_adj)
    for chunk in held:
        chunk.close()
    return {
        "victim": victim,
        "victim_died": victim_died,
        "allocated_bytes": allocated,
        "elapsed_s": round(time.monotonic() - started, 3),
    }


def _protect_self() -> None:
    """Ask never to be chosen; without CAP_SYS_RESOURCE this is refused, which is fine: the
    victim's 1000 outweighs any process's size within the same cgroup."""
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("-1000\n")
    except PermissionError:
        pass


def main(argv: list[str] | None = None) -> int:
    """The ``python -m faultproxy.oom`` CLI."""
    parser = argparse.ArgumentParser(prog="python -m faultproxy.oom", description=__doc__)
    parser.add_argument("--victim", type=int, required=True, help="pid to be OOM-killed")
    parser.add_argument("--limit-bytes", type=int, required=True, help="the cgroup's limit")
    parser.add_argument("--timeout-s", type=float, default=10.0)
    args = parser.parse_args(argv)
    result = drive(args.victim, args.limit_bytes, args.timeout_s)
    print(json.dumps(result), flush=True)
    return 0 if result["victim_died"] else EXIT_VICTIM_SURVIVED


if __name__ == "__main__":
    sys.exit(main())
