"""Local services for tests and the main job: Temporal dev server, Kafka, kube-apiserver, the SUT.

Nothing of the chaos tool imports it (an import contract checks it); only tests, benchmarks,
`starter.py demo` and the main job (`devstack.main_job`) do. May import anything.
"""
