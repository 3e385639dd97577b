"""The Chaos Mesh backend: faults are Chaos Mesh objects created through the Kubernetes API.

- `client`: the only module that talks to the Kubernetes API; wraps its errors in our own.
- `render`: pure: fault spec -> Chaos Mesh object (also behind `starter.py render`).
- `backend`: `ChaosMeshBackend`, the fault backend (create, confirm, delete, read replicas).
- `sweeper`: the orphan sweeper's activities (its schedule lives in `control.schedules`).

May import `activities.faults.backend`, `models` and `workflows.names`; never the local backend.
"""
