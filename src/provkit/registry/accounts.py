"""The account of a self-hosted Device Management API.

A self-hosted ``provkit server`` serves one account. Its row is made by the migration
that adds the table (migrations run under a lock, so servers starting together agree on
it); its id is what devices carry as ``aid`` in their bootstrap server URI and as the
OU of their developer certificates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from provkit.errors import ApiRequestInvalid, RegistryError
from provkit.registry.schema import accounts

if TYPE_CHECKING:
    from provkit.registry.api import Registry


@dataclass(frozen=True, slots=True)
class Account:
    """The account.

    Attributes:
        id: 32 hex digits.
        display_name: a label for people.
        created_at: when the registry was made.
    """

    id: str
    display_name: str
    created_at: datetime


class Accounts:
    """The account of a registry (``registry.accounts``)."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def current(self) -> Account:
        """The one account.

        Raises:
            RegistryError: the table holds no account (a database not made by provkit).
        """
        with self._registry.transaction() as conn:
            row = conn.execute(select(accounts).order_by(accounts.c.created_at)).first()
        if row is None:
            raise RegistryError("the registry has no Device Management account")
        created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
        return Account(row.id, row.display_name, created)

    def rename(self, display_name: str) -> Account:
        """Change the account's display name.

        Raises:
            ApiRequestInvalid: an empty or overlong name.
        """
        if not display_name.strip() or len(display_name) > 256:
            raise ApiRequestInvalid("a display name is 1-256 characters")
        account = self.current()
        with self._registry.transaction() as conn:
            conn.execute(
                update(accounts).where(accounts.c.id == account.id).values(display_name=display_name)
            )
        return self.current()
