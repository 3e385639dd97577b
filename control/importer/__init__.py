"""`starter.py import`: Chaos Mesh suites (YAML) become scenario files that render back the same.

`lines` reads YAML keeping each key's line; `chaos` maps one chaos spec (PodChaos, NetworkChaos,
StressChaos, DNSChaos) to a fault; `suite` maps a file's objects, Workflows and Schedules to
scenarios and writes them. What cannot be carried over is named with its line, and refuses the
import unless it is skipped; nothing is written when the import is refused.
"""
