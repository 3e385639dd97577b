"""Programs the local backend starts, and their file formats: not activities.

- `proxy`, `shaping`: the user-space TCP fault proxy carrying the replicas' traffic
  (`python -m faultproxy.proxy`).
- `control`: the proxy's file formats (routes, rule files, status file), shared by the proxy,
  the local backend and the dev stack; the only contract between them.
- `oom`: the helper that drives a replica's memory cgroup into a real OOM kill
  (`python -m faultproxy.oom`); `procs`: cgroup v1 and /proc reads and writes, detached helpers.

Standalone: imports nothing of the project (an import contract checks it).
"""
