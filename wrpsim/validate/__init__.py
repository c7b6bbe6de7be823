"""Validation against measured serving runs: `python -m wrpsim.validate` (see `__main__`).

`sets` turns each shipped measurement set into simulation cases, `replay` simulates one case,
`table` builds the error table docs/validation.md publishes; `kernels` checks a GPU's kernel
tables against measured kernels of shapes they were not made from.
"""
