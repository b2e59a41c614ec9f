"""The config: its schema (`schema.py`: every field, its default and comment), its validation
(`validate.py`, with `parse.py` for the fields that are lists in text), its documentation
(`doc.py`, for --helpconfig), the settings a config leaves unused (`unused.py`) and the
command line's config files (`files.py`: --config=NAME|PATH[:arg] found and loaded).

Configs in `ae_jax/configs/` start from `default_config()` and change what they need;
`validate(config)` checks every field before data is read or anything is compiled.
"""

from ae_jax.config.parse import parse_activations, parse_loggers, parse_text_list
from ae_jax.config.schema import (
    ACTIVATION_NAMES,
    ARCHS,
    CATEGORICAL,
    COMPUTE_DTYPES,
    DATASETS,
    IMAGE_SETS,
    LOGGERS,
    MMD_KERNELS,
    MODELS,
    OPTIM_KWARGS,
    OPTIMIZERS,
    RECON,
    SCALINGS,
    SCHEDULES,
    SPARSITY,
    TEXT_LISTS,
    default_config,
    flatten_config,
)
from ae_jax.config.validate import (
    check_image_set_fields,
    check_is_config,
    check_known,
    check_model,
    check_section,
    check_seed,
    validate,
)

__all__ = [
    "check_image_set_fields",
    "check_is_config",
    "check_known",
    "check_model",
    "check_section",
    "check_seed",
    "ACTIVATION_NAMES",
    "ARCHS",
    "CATEGORICAL",
    "COMPUTE_DTYPES",
    "DATASETS",
    "IMAGE_SETS",
    "LOGGERS",
    "MMD_KERNELS",
    "MODELS",
    "OPTIM_KWARGS",
    "OPTIMIZERS",
    "RECON",
    "SCALINGS",
    "SCHEDULES",
    "SPARSITY",
    "TEXT_LISTS",
    "default_config",
    "flatten_config",
    "parse_activations",
    "parse_loggers",
    "parse_text_list",
    "validate",
]
