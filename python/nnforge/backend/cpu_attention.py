"""Placeholder: the attention array wrappers are being written (issue 7)."""
__all__: list = []
