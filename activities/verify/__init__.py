"""Verification of the system under test through its Temporal namespace and worker replicas.

- `probe`: `TemporalProbeActivities`: steady state, hold probe, recovery and goal-run checks.
- `goal_runs`, `recovery`, `pollers`: the checks behind them, classes with their own dependencies.
- `census`, `canaries`: reading goal runs (visibility, histories) and starting canary goal runs.
- `clients`: Temporal clients per scenario target, cached per endpoint.

May import `models`, `workflows.names` and the fault backend protocol (`activities.faults.backend`,
for replicas); never a backend itself.
"""
