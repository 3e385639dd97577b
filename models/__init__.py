"""Pydantic models: the one definition of every input and output, the judge, the run summary.

Pure contracts: imports pydantic and the standard library only, and nothing else of the project
(an import contract checks it), so every layer and the workflow sandbox can share it.
"""
