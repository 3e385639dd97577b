"""Activity type names: public API shared by the workflows and both fault backends.

Both backends register the fault activities under these same names, so a scenario runs
unchanged against Chaos Mesh or on one machine; tests swap an activity by registering
another function under its name.
"""

# Scenario resolution (built-in names, deployment settings, safety checks).
RESOLVE_SCENARIO = "resolve_scenario"

# The fault backend.
PREVIEW_FAULT = "preview_fault"
INJECT_FAULT = "inject_fault"
CONFIRM_FAULT = "confirm_fault"
RECOVER_FAULT = "recover_fault"
READ_REPLICAS = "read_replicas"

# Verification of the system under test (its Temporal namespace and worker replicas).
CHECK_STEADY_STATE = "check_steady_state"
PROBE_HOLD = "probe_hold"
AWAIT_RECOVERY = "await_recovery"
CHECK_GOAL_RUNS = "check_goal_runs"

# Kafka checks.
READ_KAFKA_POSITIONS = "read_kafka_positions"
CHECK_KAFKA_EVENTS = "check_kafka_events"

FAULT_ACTIVITIES = (PREVIEW_FAULT, INJECT_FAULT, CONFIRM_FAULT, RECOVER_FAULT, READ_REPLICAS)
