"""The API's routers, one per resource."""

__all__: list[str] = []
"""Nothing at the package level: use its modules."""
