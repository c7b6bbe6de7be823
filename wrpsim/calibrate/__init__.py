"""Engine calibration: kernel tables and per-iteration constants (`python -m wrpsim.calibrate`).

`aic` compacts kernel timings in NVIDIA AIConfigurator's table layout into the tables an engine
profile ships (`pools/catalog/engines/<engine>/<gpu>/*.parquet`); `fit` fits an engine's
per-iteration constants on measured step or end-to-end timings.
"""
