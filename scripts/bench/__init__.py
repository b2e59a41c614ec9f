"""The benchmark's sections, one module each; `scripts/benchmark.py` runs them.

common          machine description, data, timing and formatting helpers
runners         the in-process JAX contenders: the engine's epoch loop and a plain Flax loop
keras_models    the seed's models in Keras 3, for the in-process Keras contenders
keras_seed_sparse  a standalone Keras 3 script of seed_sparse (run as a whole process)
process         whole processes timed start to exit, with every output line time-stamped
throughput      1. per-epoch training throughput
single_run      2. one seed_sparse run end to end, cold and warm compilation cache, vs Keras
sweep           3. the 64-config sweep: defaults on, extras off, Keras one by one
output_gap      4. the longest silence of a one-epoch run on a 60,000 x 784 table
compute         5. a compute-bound MLP against the measured matmul peak
many_models     6. K models trained together by the engine
"""
