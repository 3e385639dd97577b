"""The stand-in LLM: turns a goal description into a plan. Pure and deterministic.

ByteBot asks an LLM for a plan; the stand-in reads directives from the goal description
instead, so the load generator and tests can ask for each lifecycle the real worker produces:

- ``[steps=N]``: N steps (default 3, cut to ``maxSteps``);
- ``[step-ms=N]``: each step works N ms, unscaled (default `DEFAULT_STEP_MS`);
- ``[high-risk]``: the last step is high-risk (it waits for approval when required);
- ``[flaky]``: step 1 reports failure once, then succeeds (retried on the same key);
- ``[skip]``: step 2 is skipped;
- ``[replan]``: the first plan's step 1 fails every retry, so a second plan is made;
- ``[fail]``: step 1 fails in every plan, so the goal run fails.
"""

from __future__ import annotations

import re

from standin.models import Plan, PlannedStep

DEFAULT_STEPS = 3
DEFAULT_STEP_MS = 3000
_NUMBER = re.compile(r"\[(steps|step-ms)=(\d+)\]")


def directives(description: str) -> set[str]:
    """The bare ``[word]`` directives in a description."""
    return set(re.findall(r"\[([a-z-]+)\]", description))


def make_plan(description: str, *, max_steps: int, max_retries: int, version: int) -> Plan:
    """The plan for a goal description (``version`` 0 first, +1 per replan)."""
    numbers = {k: int(v) for k, v in _NUMBER.findall(description)}
    words = directives(description)
    count = max(1, min(numbers.get("steps", DEFAULT_STEPS), max_steps))
    work_ms = numbers.get("step-ms", DEFAULT_STEP_MS)
    always = max_retries + 1  # fails every attempt of this plan
    steps = []
    for n in range(1, count + 1):
        failures = 0
        if n == 1 and ("fail" in words or ("replan" in words and version == 0)):
            failures = always
        elif n == 1 and "flaky" in words and version == 0:
            failures = 1
        steps.append(
            PlannedStep(
                step_number=n,
                description=f"step {n} of plan {version}: {description[:60]}",
                work_ms=work_ms,
                high_risk="high-risk" in words and n == count,
                skip="skip" in words and n == 2,
                failures=failures,
            )
        )
    return Plan(version=version, steps=steps)
