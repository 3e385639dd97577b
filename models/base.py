"""The base class every model shares: immutable, and strict about unknown fields."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    """An immutable model that rejects unknown fields, so a typo in a scenario fails loudly."""

    model_config = ConfigDict(frozen=True, extra="forbid")
