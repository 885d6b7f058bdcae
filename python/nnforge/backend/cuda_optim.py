"""PLACEHOLDER (session 5 wiring): the CUDA optim family; being written."""
__all__ = []
