"""Embedded FCU templates (the commented fcu.yml)."""

__all__: list[str] = []
"""Nothing at the package level: use its modules."""
