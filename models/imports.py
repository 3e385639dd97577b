"""What `starter.py import` found in a Chaos Mesh suite: the scenarios, and every problem.

An issue names the file and line of what it is about. `refused` stops the import (nothing is
written) unless the run skips what it cannot carry over, which turns it into `skipped`;
`dropped` is a field Chaos Mesh 2.x itself ignores or refuses (e.g. the 1.x `scheduler`);
`note` says how something was carried over when it is not word for word.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from models.base import Frozen


class IssueKind(StrEnum):
    """How an issue affects the import."""

    REFUSED = "refused"
    SKIPPED = "skipped"
    DROPPED = "dropped"
    NOTE = "note"


class ImportIssue(Frozen):
    """One thing the importer could not carry over word for word."""

    file: str = Field(description="The file it is in.")
    line: int = Field(ge=0, description="Its line in the file (1-based; 0 when unknown).")
    where: str = Field(description="The object and field, e.g. `PodChaos x: spec.scheduler`.")
    kind: IssueKind = Field(description="refused, skipped, dropped or note.")
    message: str = Field(description="What it is and what the importer did about it.")

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.kind.value}: {self.where}: {self.message}"


class ImportResult(Frozen):
    """The outcome of one import."""

    written: list[str] = Field(default_factory=list, description="Scenario files written.")
    issues: list[ImportIssue] = Field(default_factory=list, description="Every issue found.")

    @property
    def refused(self) -> bool:
        """Whether something stopped the import."""
        return any(i.kind is IssueKind.REFUSED for i in self.issues)
