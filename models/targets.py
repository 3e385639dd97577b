"""Chaos Mesh's selector: which pods a fault (or a network fault's other side) hits.

One `PodTarget` is reused everywhere a Chaos Mesh object selects pods: the fault's own
`selector` with its `mode` and `value`, and a network fault's `target` (the pods on the other
side of the traffic). Any namespace may be named here; which ones a deployment allows is
checked when a run is resolved (`CHAOS_ALLOWED_NAMESPACES`), never by the model.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, model_validator

from models.base import Frozen

WORKER_LABELS = {"app": "bytebot-temporal-worker"}


class SelectMode(StrEnum):
    """How many of the matching targets a fault hits (Chaos Mesh's `mode`)."""

    ONE = "one"
    ALL = "all"
    FIXED = "fixed"
    FIXED_PERCENT = "fixed-percent"
    RANDOM_MAX_PERCENT = "random-max-percent"


class PodTarget(Frozen):
    """Pods chosen by namespace and labels, then by mode (the worker pods by default)."""

    namespace: str = Field(
        "bytebot",
        pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
        description="Namespace of the target pods (it must also be an allowed namespace).",
    )
    labels: dict[str, str] = Field(
        default_factory=lambda: dict(WORKER_LABELS),
        description="Pods must carry every one of these labels; {} selects every pod of the "
        "namespace.",
    )
    mode: SelectMode = Field(SelectMode.ONE, description="How many matching pods to hit.")
    value: int | None = Field(
        None, ge=1, description="Count for 'fixed'; percent (1-100) for the percent modes."
    )

    @model_validator(mode="after")
    def _value_fits_mode(self) -> PodTarget:
        if self.mode in (SelectMode.ONE, SelectMode.ALL) and self.value is not None:
            raise ValueError(f"mode '{self.mode}' takes no value")
        if self.mode is SelectMode.FIXED and self.value is None:
            raise ValueError("mode 'fixed' needs a value: the number of pods")
        percent = self.mode in (SelectMode.FIXED_PERCENT, SelectMode.RANDOM_MAX_PERCENT)
        if percent and (self.value is None or self.value > 100):
            raise ValueError(f"mode '{self.mode}' needs a value between 1 and 100 (percent)")
        return self

    def describe(self) -> str:
        """A short human form, e.g. `bytebot/app=bytebot-temporal-worker (one)`."""
        labels = ",".join(f"{k}={v}" for k, v in sorted(self.labels.items())) or "*"
        mode = self.mode.value if self.value is None else f"{self.mode.value} {self.value}"
        return f"{self.namespace}/{labels} ({mode})"

    def selects(self, namespace: str, labels: dict[str, str]) -> bool:
        """Whether a pod in ``namespace`` with ``labels`` matches this selector (mode aside)."""
        return namespace == self.namespace and all(
            labels.get(key) == value for key, value in self.labels.items()
        )
