"""PLACEHOLDER (session 5 wiring): the CUDA conv family; being written."""
__all__ = []
