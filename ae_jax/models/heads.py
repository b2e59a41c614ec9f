"""Per-column likelihood heads of a table (`loss.recon='mixed'`): the decoder's D outputs read
column by column.

`heads` is the preprocessor's layout, a tuple of (name, kind, start, width): a numeric column
is one Gaussian mean, a true/false column one Bernoulli logit, a categorical column a block of
`width` logits of a softmax over its categories (its one-hot encoding, UNSEEN slot included).
`mean(logits, heads)` is the likelihood's mean per output: the reconstruction a mixed model
gives (numbers, probabilities of true, category probabilities).
"""

import jax
import jax.numpy as jnp

NUMERIC, BOOLEAN, CATEGORICAL = "numeric", "boolean", "categorical"


def indices(heads, kind: str) -> tuple[int, ...]:
    """The output columns of the one-wide heads of `kind` (numeric or boolean)."""
    return tuple(start for _, k, start, _ in heads if k == kind)


def blocks(heads) -> tuple[tuple[int, int], ...]:
    """(start, width) of each categorical column's block of logits."""
    return tuple((start, width) for _, k, start, width in heads if k == CATEGORICAL)


def mean(logits: jax.Array, heads) -> jax.Array:
    """(..., D) logits -> (..., D) means: identity, sigmoid, or softmax within each block."""
    out = logits
    boolean = jnp.asarray(indices(heads, BOOLEAN), jnp.int32)
    if boolean.size:
        out = out.at[..., boolean].set(jax.nn.sigmoid(logits[..., boolean]))
    for start, width in blocks(heads):
        out = out.at[..., start : start + width].set(
            jax.nn.softmax(logits[..., start : start + width], axis=-1)
        )
    return out
