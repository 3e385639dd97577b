"""The local fault backend: the seed's faults applied to processes on one Linux machine.

- `backend`: `LocalBackend`, the fault backend, composing the families below.
- `replicas`: reads the stand-in supervisor's ``state.json``; selects targets (Chaos Mesh modes).
- `ledger`: the backend's own state, one file per fault, for idempotency and the janitor.
- `common`: what the families share (their environment, their interface, polling).
- `pods`, `network`, `stress`: one module per fault family, each an apply/confirm/recover trio.

The programs it starts (the fault proxy, the OOM helper) and their file formats are
`faultproxy`'s. May import `activities.faults.backend`, `models`, `workflows.names` and
`faultproxy`; never the Chaos Mesh backend, nor `standin`: the stand-in is a foreign system,
read only through its state directory.
"""
