"""Every activity, workflow and schedule name: public API, declared in one place.

Both fault backends register the fault activities under these same names, so a scenario runs
unchanged against Chaos Mesh or on one machine; tests swap an activity by registering another
function under its name. The CLI, schedules and visibility queries use the workflow names.
Pure constants: the workflows and every activity module may import this module.
"""

# Scenario resolution (built-in names, deployment settings, safety checks).
RESOLVE_SCENARIO = "resolve_scenario"

# The fault backend.
PREVIEW_FAULT = "preview_fault"
INJECT_FAULT = "inject_fault"
CONFIRM_FAULT = "confirm_fault"
RECOVER_FAULT = "recover_fault"
# Pause and resume running faults (the `pause`/`resume` signals; Chaos Mesh's pause annotation).
PAUSE_FAULT = "pause_fault"
RESUME_FAULT = "resume_fault"

# Verification of the system under test (its Temporal namespace and worker replicas).
CHECK_STEADY_STATE = "check_steady_state"
PROBE_HOLD = "probe_hold"
AWAIT_RECOVERY = "await_recovery"
CHECK_GOAL_RUNS = "check_goal_runs"
RECONCILE_EVENTS = "reconcile_events"

# Kafka checks.
READ_KAFKA_POSITIONS = "read_kafka_positions"
CHECK_KAFKA_EVENTS = "check_kafka_events"

# The orphan sweeper (Chaos Mesh backend only).
LIST_CHAOS_OBJECTS = "list_chaos_objects"
CHECK_CHAOS_RUNS = "check_chaos_runs"
DELETE_CHAOS_OBJECTS = "delete_chaos_objects"

SWEEPER_WORKFLOW = "ChaosOrphanSweeperWorkflow"
SWEEPER_SCHEDULE_ID = "bytebot-chaos-orphan-sweeper"

# Workflow types, their signals and queries (the CLI, schedules and `temporal` commands use them).
SCENARIO_WORKFLOW = "ChaosScenarioWorkflow"
FAULT_WORKFLOW = "ChaosFaultWorkflow"
ABORT_SIGNAL = "abort"
PAUSE_SIGNAL = "pause"
RESUME_SIGNAL = "resume"
LEDGER_SIGNAL = "fault_recorded"
STATUS_QUERY = "status"
RECORD_QUERY = "record"
PHASE_QUERY = "phase"
PROGRESS_QUERY = "progress"
#: Patch id: a fault run tells its parent its ledger row once (when the hold begins), not at
#: every change; the final row travels in its result.
LEDGER_BY_RESULT_PATCH = "ledger-by-result"
#: A fault on the Temporal frontend or a Kafka broker is verified on the worker pods.
WATCH_WORKERS_PATCH = "watch-workers-behind-infrastructure"
#: A lag sample that cannot be read while a fault holds (the broker is the target) is skipped.
LAG_SAMPLE_MAY_FAIL_PATCH = "lag-sample-may-fail"
#: A fault on the Temporal frontend may be confirmed after its hold (its outage held us up).
CONFIRM_AFTER_OUTAGE_PATCH = "confirm-after-frontend-outage"

WEEKLY_SCHEDULE_ID = "bytebot-chaos-weekly"
