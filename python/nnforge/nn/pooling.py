"""Placeholder while issue 5 is written."""
__all__: list = []
