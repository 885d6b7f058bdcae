"""PLACEHOLDER (session 5 wiring): the CUDA batchnorm family; being written."""
__all__ = []
