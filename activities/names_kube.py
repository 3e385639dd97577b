"""Names of the Chaos Mesh backend's own activities, the orphan sweeper and its schedule.

Public API like `activities.names`: the sweeper workflow, its schedule and the worker use them.
The fault activities themselves keep the shared names in `activities.names`.
"""

# Pausing a running Chaos Mesh experiment (annotation `experiment.chaos-mesh.org/pause`).
PAUSE_FAULT = "pause_fault"
RESUME_FAULT = "resume_fault"

# The orphan sweeper.
LIST_CHAOS_OBJECTS = "list_chaos_objects"
CHECK_CHAOS_RUNS = "check_chaos_runs"
DELETE_CHAOS_OBJECTS = "delete_chaos_objects"

SWEEPER_WORKFLOW = "ChaosOrphanSweeperWorkflow"
SWEEPER_SCHEDULE_ID = "bytebot-chaos-orphan-sweeper"

SWEEPER_ACTIVITIES = (LIST_CHAOS_OBJECTS, CHECK_CHAOS_RUNS, DELETE_CHAOS_OBJECTS)
