"""PLACEHOLDER (session 5 wiring): the CUDA rnn family; being written."""
__all__ = []
