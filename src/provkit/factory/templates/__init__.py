"""Embedded FCU templates (the commented fcu.yml)."""
