"""PLACEHOLDER (session 5 wiring): the CUDA index family; being written."""
__all__ = []
