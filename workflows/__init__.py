"""Orchestration only: ChaosScenarioWorkflow, ChaosFaultWorkflow, the orphan sweeper.

Deterministic, no I/O. `names` holds every activity, workflow, signal, query and schedule name;
`policies` the timeouts and retry policies; `visibility` the search attributes. May import
`models` and these modules only (no `kubernetes`, `aiokafka`, `structlog`, no activities).
"""
