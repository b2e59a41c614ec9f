"""ae_jax: autoencoders in JAX/Flax Linen, trained with one pure jitted step.

Public entry points: `train_and_evaluate(config, workdir)`, `load(workdir)`, `train_group(configs,
workdirs)` and `train_together(base, overrides, workdir)` for runs trained together,
`default_config()`, and the model classes.

The package reads in layers, each importing only from those before it:
  errors, config, workdir, reruns, runtime   the error type, the config schema, the workdir
               contract, what a rerun may change
  data/        table readers, preprocessing, image sets, `load_dataset`
  models/      MLP and convolutional autoencoders and VAEs, `build_model`
  training/    objective, optimizers, the compiled engine, the group-run loop, checkpoints
  evaluation/  statistics, passes batched over models, figures, loading a trained run
  experiment   train, then evaluate in memory, then figures, then mark the runs done
  sweeps/      declaring, running and reporting sweeps
  cli          what the command-line entry points share

The names below are imported on first use, so `import ae_jax` stays light.
"""

import importlib

_PUBLIC = {
    "default_config": "ae_jax.config",
    "validate": "ae_jax.config",
    "UserError": "ae_jax.errors",
    "Interrupted": "ae_jax.training.signals",
    "TrainedModel": "ae_jax.evaluation.trained",
    "load": "ae_jax.evaluation.trained",
    "VAE": "ae_jax.models",
    "Autoencoder": "ae_jax.models",
    "Decoder": "ae_jax.models",
    "Encoder": "ae_jax.models",
    "GaussianEncoder": "ae_jax.models",
    "build_model": "ae_jax.models",
    "train_and_evaluate": "ae_jax.experiment",
    "train_group": "ae_jax.experiment",
    "train_together": "ae_jax.sweeps.overrides",
}

# The layers as attributes, imported on first use as the names above (`ae_jax.data.load_dataset`
# after a bare `import ae_jax`, as with scipy's subpackages).
_LAYERS = ("config", "data", "models", "training", "evaluation", "sweeps", "workdir")

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name == "__version__":  # the installed package's, as `ae-jax --version` prints it
        return importlib.import_module("importlib.metadata").version("ae_jax")
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    if name in _LAYERS:
        return importlib.import_module(f"ae_jax.{name}")
    raise AttributeError(f"module 'ae_jax' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(_LAYERS))
