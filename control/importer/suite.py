"""A file of Chaos Mesh documents as scenarios: its chaos objects, Workflows and Schedules.

- The chaos objects of a file (PodChaos, NetworkChaos, StressChaos, DNSChaos) become one
  scenario named after the file, one step per object, in file order.
- A Workflow becomes a scenario named after it: its entry's Serial children are the steps
  (a Suspend is a pause, a Parallel holds its chaos children together, a chaos template is a
  fault; nested Serials are flattened). StatusCheck, Task, Schedule templates and branches
  cannot be carried over.
- A Schedule becomes a scenario with `schedule` settings (cron, concurrency policy, history
  limit, starting deadline) and the steps of its workflow or its single chaos object.
- Any other kind is named with its line and refused (or skipped).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from control.importer.chaos import CHAOS_KINDS, Context, fault_of
from control.importer.lines import Located
from control.importer.shapes import document_shape, problems
from models.errors import describe_validation_error
from models.imports import ImportIssue, IssueKind
from models.scenario import Step

_NAME = re.compile(r"[^-a-z0-9]+")
_EMBEDDED = {
    "PodChaos": "podChaos",
    "NetworkChaos": "networkChaos",
    "StressChaos": "stressChaos",
    "DNSChaos": "dnsChaos",
}


def dns_name(text: str, limit: int) -> str:
    """``text`` as a lowercase DNS label of at most ``limit`` characters."""
    return _NAME.sub("-", text.lower()).strip("-")[:limit].strip("-")


@dataclass
class Draft:
    """A scenario being built: its data, and the line it comes from."""

    name: str
    line: int
    data: dict[str, Any] = field(default_factory=dict)


def checked_step(
    step: dict[str, Any], ctx: Context, line: int, before: int
) -> dict[str, Any] | None:
    """The step if nothing was refused while building it and it validates, else None."""
    if sum(i.kind is IssueKind.REFUSED for i in ctx.issues) > before:
        return None
    try:
        Step.model_validate(step)
    except ValidationError as err:
        ctx.cannot(line, "spec", describe_validation_error(err).replace("\n", "; "))
        return None
    return step


def _refused(ctx: Context) -> int:
    return sum(i.kind is IssueKind.REFUSED for i in ctx.issues)


def _ctx(file: str, doc: Located, default_duration: timedelta) -> Context:
    meta = doc.get("metadata") or {}
    where = f"{doc.get('kind')} {meta.get('name', '?')}"
    return Context(file, where, str(meta.get("namespace") or "default"), default_duration)


def _step_of_object(kind: str, doc: Located, ctx: Context) -> dict[str, Any] | None:
    name = str((doc.get("metadata") or {}).get("name", kind.lower()))
    spec, before = _located(doc.get("spec"), doc.line), _refused(ctx)
    fault = fault_of(kind, spec, ctx, dns_name(name, 40))
    return checked_step({"name": name, "fault": fault}, ctx, spec.line, before)


class _Templates:
    """Walks a Workflow's templates from its entry into steps."""

    def __init__(self, workflow: Located, ctx: Context) -> None:
        self.ctx = ctx
        self.by_name = {
            str(t.get("name")): t for t in workflow.get("templates") or [] if isinstance(t, Located)
        }
        self.workflow = workflow

    def steps(self) -> list[dict[str, Any]]:
        entry = self.by_name.get(str(self.workflow.get("entry")))
        if entry is None:
            self.ctx.cannot(self.workflow.line_of("entry"), "entry", "names no template")
            return []
        return self._steps(entry)

    def _steps(self, template: Located) -> list[dict[str, Any]]:
        kind, name = template.get("templateType"), str(template.get("name"))
        for key in ("abortWithStatusCheck", "conditionalBranches"):
            if template.get(key):
                self.ctx.cannot(
                    template.line_of(key),
                    f"template {name}.{key}",
                    "workflow branching and status-check aborts cannot be carried over",
                )
        if kind == "Serial":
            return [s for child in self._children(template) for s in self._steps(child)]
        if kind == "Suspend":
            return [{"name": name, "pause": self._suspend_duration(template)}]
        if kind == "Parallel":
            faults = [f for c in self._children(template) if (f := self._fault(c))]
            return [{"name": name, "faults": faults}] if faults else []
        fault = self._fault(template)
        return [{"name": name, "fault": fault}] if fault else []

    def _children(self, template: Located) -> list[Located]:
        out = []
        for child in template.get("children") or []:
            found = self.by_name.get(str(child))
            if found is None:
                self.ctx.cannot(
                    template.line_of("children"),
                    f"template {template.get('name')}",
                    f"child {child!r} is no template",
                )
            else:
                out.append(found)
        return out

    def _suspend_duration(self, template: Located) -> str:
        suspend = template.get("suspend")
        if template.get("deadline"):
            return str(template["deadline"])
        if isinstance(suspend, Located) and suspend.get("duration"):
            self.ctx.add(
                IssueKind.NOTE,
                template.line_of("suspend"),
                f"template {template.get('name')}.suspend.duration",
                "not a Chaos Mesh 2.x field (2.x bounds a Suspend by `deadline`): "
                "taken as the pause, rendered as `deadline`",
            )
            return str(suspend["duration"])
        self.ctx.cannot(
            template.line,
            f"template {template.get('name')}",
            "a Suspend without deadline has no bound",
        )
        return "0s"

    def _fault(self, template: Located) -> dict[str, Any] | None:
        kind, name = str(template.get("templateType")), str(template.get("name"))
        if kind not in CHAOS_KINDS:
            what = {
                "StatusCheck": "a StatusCheck (this tool's verdicts check the system)",
                "Task": "a Task (it runs a container)",
                "Schedule": "a nested Schedule",
            }
            self.ctx.cannot(
                template.line_of("templateType"),
                f"template {name}",
                f"{what.get(kind, f'template type {kind!r}')} cannot be carried over",
            )
            return None
        spec = template.get(_EMBEDDED[kind])
        deadline = str(template["deadline"]) if template.get("deadline") else None
        return fault_of(
            kind,
            _located(spec, template.line_of(_EMBEDDED[kind])),
            self.ctx,
            dns_name(name, 40),
            deadline,
        )


def _schedule_settings(spec: Located) -> dict[str, Any]:
    out: dict[str, Any] = {"cron": str(spec.get("schedule", ""))}
    out["concurrency_policy"] = spec.get("concurrencyPolicy", "Forbid")
    if spec.get("historyLimit") is not None:
        out["history_limit"] = spec["historyLimit"]
    if spec.get("startingDeadlineSeconds") is not None:
        out["starting_deadline"] = int(spec["startingDeadlineSeconds"])
    return out


def drafts_of(
    file: str, stem: str, docs: list[Located], default_duration: timedelta
) -> tuple[list[Draft], list[ImportIssue]]:
    """The scenarios of one file's documents, and the issues of what they could not carry."""
    objects = Draft(dns_name(stem, 63) or "imported", 1, {"steps": []})
    drafts, issues = [], []
    for doc in docs:
        kind = str(doc.get("kind"))
        if wrong := problems(doc, document_shape(kind), "", doc.line):
            issues += [
                ImportIssue(
                    file=file, line=line, where=f"{kind}: {path}", kind=IssueKind.REFUSED, message=m
                )
                for line, path, m in wrong
            ]
            continue
        ctx = _ctx(file, doc, default_duration)
        try:
            drafts += _drafts_of_document(kind, doc, ctx, objects)
        except (TypeError, ValueError, AttributeError, KeyError) as err:
            # A shape the checks above do not know yet: refused, never a crash.
            ctx.cannot(doc.line, "spec", f"cannot be read: {type(err).__name__}: {err}")
        issues += ctx.issues
    if objects.data["steps"]:
        drafts.insert(0, objects)
    return drafts, issues


def _drafts_of_document(kind: str, doc: Located, ctx: Context, objects: Draft) -> list[Draft]:
    """The scenario of a Workflow or Schedule, or the step a chaos object adds to `objects`."""
    drafts = []
    name = dns_name(str((doc.get("metadata") or {}).get("name", "")), 63) or "imported"
    spec = _located(doc.get("spec"), doc.line)
    if kind in CHAOS_KINDS:
        if step := _step_of_object(kind, doc, ctx):
            objects.data["steps"].append(step)
    elif kind == "Workflow":
        drafts.append(Draft(name, doc.line, {"steps": _Templates(spec, ctx).steps()}))
    elif kind == "Schedule":
        drafts.append(Draft(name, doc.line, _schedule(spec, name, ctx)))
    else:
        what = {"StatusCheck": "a StatusCheck (this tool's verdicts check the system)"}
        ctx.cannot(doc.line_of("kind"), "kind", f"{what.get(kind, kind)} cannot be carried over")
    return drafts


def _schedule(spec: Located, name: str, ctx: Context) -> dict[str, Any]:
    data: dict[str, Any] = {"schedule": _schedule_settings(spec), "steps": []}
    sched_type = str(spec.get("type"))
    if sched_type == "Workflow":
        data["steps"] = _Templates(_located(spec.get("workflow"), spec.line), ctx).steps()
    elif sched_type in CHAOS_KINDS:
        embedded = _EMBEDDED[sched_type]
        inner, before = _located(spec.get(embedded), spec.line_of(embedded)), _refused(ctx)
        step = {"name": name, "fault": fault_of(sched_type, inner, ctx, dns_name(name, 40))}
        data["steps"] = [s] if (s := checked_step(step, ctx, inner.line, before)) else []
    else:
        ctx.cannot(spec.line_of("type"), "spec.type", f"a Schedule of {sched_type!r}")
    return data


def _located(value: Any, line: int = 0) -> Located:
    """`value` if a mapping, else an empty one at `line` (where the missing one belongs)."""
    if isinstance(value, Located):
        return value
    empty = Located()
    empty.line = line
    return empty
