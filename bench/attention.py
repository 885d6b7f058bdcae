"""Placeholder: the attention benchmark is being written."""


def cases(threads):
    return []
