"""Placeholder: replaced by the work that owns these commands."""

COMMANDS: list = []
