"""Search attributes the runs keep current, declared in one place."""

from temporalio.common import SearchAttributeKey

SCENARIO = SearchAttributeKey.for_keyword("ChaosScenario")
VERDICT = SearchAttributeKey.for_keyword("ChaosVerdict")
PHASE = SearchAttributeKey.for_keyword("ChaosPhase")
FAULT = SearchAttributeKey.for_keyword("ChaosFault")

ALL = (SCENARIO, VERDICT, PHASE, FAULT)
