"""PLACEHOLDER (session 5 wiring): the CUDA loss family; being written."""
__all__ = []
