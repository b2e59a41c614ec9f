"""Evaluation: statistics (numpy), passes batched over models (jitted), figures, and
loading a trained run from its workdir."""
