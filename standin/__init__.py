"""A local stand-in for ByteBot's Temporal worker: the system the chaos tool is tested against.

goalRunWorkflow and its activities (`goal_run`, `activities`), the Kafka events they write
(`events`, `kafka_sink`), one worker process (`replica`), a supervisor playing a Kubernetes
Deployment (`supervisor`, `process`, `cgroups`, `state`), ByteBot's consumer (`consumer`) and
API load (`loadgen`), and ``python -m standin up`` running them all (`__main__`).

It knows nothing of the chaos tool: it imports nothing from it, and nothing there imports it.
"""
