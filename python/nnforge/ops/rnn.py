"""Placeholder while issue 6 is written."""
__all__: list = []
