"""Every side effect of a chaos run, one external system per sub-package.

- `scenario`, `scenario_files`: resolve a scenario (built-in names, files, caps, safety checks).
- `faults`: the fault backend protocol, the fault activities, and the two backends.
- `verify`: the system under test in Temporal: goal runs, canaries, pollers, recovery.
- `kafka`: the Kafka checks: positions, consumer lag, per-key event order.

May import `models`, `workflows.names` (the public names) and `faultproxy` (its file formats and
helpers); never another workflow module, `control`, `devstack` or `standin`.
"""
