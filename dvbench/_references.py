"""Model references by prefix (``study:NAME:TRIAL``): one table from a prefix to its resolver.

It sits on the ground floor and imports nothing, so that the package can declare the
resolvers of its higher rooms (``dvbench/__init__.py`` declares ``study:``) without importing
them, and :func:`dvbench.models.resolve_spec` can consult it without importing those rooms.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["register_spec_resolver", "spec_resolver"]

# prefix -> function(reference) returning a DualViTConfig (or a model name)
_RESOLVERS: dict[str, Callable[[str], Any]] = {}


def register_spec_resolver(prefix: str, resolver: Callable[[str], Any]) -> None:
    """Let a higher layer name models by reference, e.g. ``study:NAME:TRIAL``."""
    _RESOLVERS[prefix] = resolver


def spec_resolver(spec: str) -> Callable[[str], Any] | None:
    """The resolver for ``PREFIX:...`` when one is registered for PREFIX, else None."""
    prefix, colon, _ = spec.partition(":")
    return _RESOLVERS.get(prefix) if colon else None
