"""The Kafka checks: committed offsets and lag over each fault, per-key lifecycle order.

- `client`: the only module that talks to the broker (a group-less reader, offsets, lag rows).
- `order`: pure: the ordering checker over consumed records.
- `order_process`: that checker in a child process, fed while the reader decodes (large windows).
- `probe`: `KafkaProbeActivities`, the activities (read positions, check the events).

May import `models` and `workflows.names`; no fault backend and no Temporal probe.
"""
