"""Placeholder: the rnn benchmark is being written."""


def cases(threads):
    return []
