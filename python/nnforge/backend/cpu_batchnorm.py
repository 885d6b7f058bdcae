"""CPU batchnorm wrappers over nnforge._C.cpu (placeholder while issue 5 is written)."""
__all__: list = []
