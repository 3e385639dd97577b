"""A run as JUnit XML, so any CI system shows a chaos run like a test run.

One testcase per fault x criterion (classname `<scenario>.<fault>`); a failed criterion is a
`<failure>` carrying its summary, findings and evidence; inconclusive is a failure too (it
tested nothing, which CI must not show green), aborted an `<error>`, not-run `<skipped>`.
Written with the standard library's ElementTree: the format is small and stable.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from models.report import CriterionResult, FaultReport, ScenarioReport, Verdict


def _outcome(case: ET.Element, verdict: Verdict, message: str, body: list[str]) -> str:
    """Add the outcome element of a testcase; which JUnit counter it adds to."""
    text = "\n".join(body)
    if verdict in (Verdict.PASS, Verdict.DRY_RUN):
        return "passed"
    if verdict is Verdict.NOT_RUN:
        ET.SubElement(case, "skipped", message=message)
        return "skipped"
    if verdict is Verdict.ABORTED:
        ET.SubElement(case, "error", message=message, type="aborted").text = text
        return "errors"
    ET.SubElement(case, "failure", message=message, type=verdict.value).text = text
    return "failures"


def _criterion_body(criterion: CriterionResult) -> list[str]:
    return [
        criterion.summary,
        *(f"finding: {x}" for x in criterion.findings),
        *(f"evidence: {x}" for x in criterion.evidence),
    ]


def _cases(report: ScenarioReport, fault: FaultReport) -> list[tuple[str, Verdict, str, list[str]]]:
    """(name, verdict, message, body) per testcase of one fault."""
    if fault.criteria:
        return [
            (c.criterion.value, c.verdict, f"{c.verdict.value}: {c.summary}", _criterion_body(c))
            for c in fault.criteria
        ]
    # Not judged per criterion (not steady, failed child, dry run): one case for the fault.
    message = f"{fault.verdict.value}: {fault.reason}" if fault.reason else fault.verdict.value
    return [("fault", fault.verdict, message, [fault.reason] if fault.reason else [])]


def junit_xml(report: ScenarioReport) -> str:
    """The report as a JUnit XML document."""
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    elapsed = (report.ended_at - report.started_at).total_seconds()
    suites = ET.Element("testsuites", name=f"chaos {report.scenario}")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=report.scenario,
        timestamp=report.started_at.isoformat(),
        time=f"{elapsed:.1f}",
    )
    props = ET.SubElement(suite, "properties")
    for key, value in (
        ("workflow_id", report.workflow_id),
        ("backend", report.backend),
        ("verdict", report.verdict.value),
        ("score_pct", f"{report.score_pct:.1f}"),
    ):
        ET.SubElement(props, "property", name=key, value=value)
    for fault in report.faults():
        seconds = f"{fault.time_to_recovery_s or 0:.1f}"
        for name, verdict, message, body in _cases(report, fault):
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"{report.scenario}.{fault.label}",
                name=name,
                time=seconds,
            )
            counts["tests"] += 1
            counter = _outcome(case, verdict, message, body)
            if counter != "passed":
                counts[counter] += 1
    for key, count in counts.items():
        suite.set(key, str(count))
        suites.set(key, str(count))
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(report: ScenarioReport, path: Path) -> Path:
    """Write the JUnit XML file (creating its directory); its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(junit_xml(report))
    return path
