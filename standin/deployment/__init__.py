"""The local Deployment: N replicas of any worker command, kept running like Kubernetes would.

`supervisor` reconciles; `process` starts one replica directly (no shell in between, so its pid
is the worker's) inside its cgroups (`cgroups`); `probes` decides readiness (HTTP or exec, as a
readinessProbe); `state` is the state directory the chaos tool reads (``state.json``, holds).

It knows nothing of the stand-in worker it usually runs: nothing here imports the rest of
`standin`, and the worker is just the default command.
"""
