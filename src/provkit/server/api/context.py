"""What every route works with: the registry and the developer CA, kept on the app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from provkit.registry import Registry
from provkit.server.api.developer import DeveloperAuthority, ServerIdentity


@dataclass(frozen=True, slots=True)
class ApiContext:
    """The API's state, shared by every request (thread-safe).

    Attributes:
        registry: the registry database of the server.
        developer: the developer CA.
    """

    registry: Registry
    developer: DeveloperAuthority

    @property
    def identity(self) -> ServerIdentity:
        """Where devices connect and the CA of the servers' certificates."""
        return self.developer.identity


def _context(request: Request) -> ApiContext:
    context = request.app.state.context
    assert isinstance(context, ApiContext)
    return context


Context = Annotated[ApiContext, Depends(_context)]
"""A route parameter: the API's state."""
