"""CPU rnn wrappers over nnforge._C.cpu (placeholder while issue 6 is written)."""
__all__: list = []
