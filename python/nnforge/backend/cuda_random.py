"""PLACEHOLDER (session 5 wiring): the CUDA random family; being written."""
__all__ = []
