"""The local fault backend's parts: the seed's faults applied to processes on one Linux machine.

- `control`: the fault proxy's file formats (routes, rule files, status file), shared by the
  proxy and the backend; the only contract between them.
- `proxy`, `shaping`: the user-space TCP fault proxy carrying the replicas' traffic.
- `replicas`: reads the stand-in supervisor's ``state.json``; selects targets (Chaos Mesh modes).
- `ledger`: the backend's own state, one file per fault, for idempotency and the janitor.
- `common`: what the families share (their environment, their interface, polling).
- `procs`: cgroup v1 and /proc reads and writes, and detached helper processes.
- `pods`, `network`, `stress`: one module per fault family, each an apply/confirm/recover trio.
- `oom`: the helper that drives a replica's memory cgroup into a real OOM kill.

`activities.faults.local.backend.LocalBackend` composes them. Nothing here imports `standin`: the
stand-in is a foreign system, read only through its state directory.
"""
