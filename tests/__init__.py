"""The suite: real dev server, broker, kube-apiserver and processes (see tests/conftest.py)."""
