"""What the CLI does, kept out of `starter.py` (which only parses).

Runs, reports, schedules (the weekly run's and the orphan sweeper's) and the seed manifests
(`python -m control.manifests write manifests/`).

May import `models`, `workflows.names`, `activities.scenario_files` (the same scenario loading
as the worker) and `activities.faults.chaos_mesh.render` (for the manifests); never `devstack`
or `standin`.
"""
