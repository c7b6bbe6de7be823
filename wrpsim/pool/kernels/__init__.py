"""Iteration times from measured kernel tables (the `kernels` engine kind).

`tables` loads one GPU's compact kernel tables and answers shape queries by interpolation;
`roofline` moves a measured time to another shape, dtype or GPU by the ratio of roofline times
(the measured efficiency is kept); `model` sums an iteration's operators into `KernelLatency`.
"""
