"""PLACEHOLDER (session 5 wiring): the CUDA pool family; being written."""
__all__ = []
