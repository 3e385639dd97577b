"""Faults: the backend protocol, the fault activities over it, and the two backends.

`backend` holds the protocol and its errors, `activities` the fault activities, `chaos_mesh`
the Chaos Mesh backend (objects in a cluster) and `local` the local one (processes on one
machine). Both register the same activity names, so a scenario runs unchanged anywhere.

The backends are independent of each other (an import contract checks it); each may import
`activities.faults.backend`, `models`, `workflows.names`, and `local` also `faultproxy`.
"""
