r"""A convolutional autoencoder on MNIST (28x28) read from your local files.

  ae-jax train --config=conv_ae_mnist \
    --workdir=/tmp/conv_ae_mnist --config.data.dir=PATH

PATH holds the four MNIST IDX files (train-images-idx3-ubyte, ..., gzipped or not) or a Keras
`mnist.npz`; nothing is downloaded. Prints one line per epoch (train/eval loss = BCE summed over
the 784 pixels per image, l1 of the code, eval/mse; rows/s; ETA) and a summary table, then
evaluates: eval.json (recon/mse against PCA with 32 components, code statistics) and figures/
with reconstructions.png (test digits above their reconstructions), codes_2d.png and
learning_curves.png. The 10,000 test images are the validation split.

Cost: 10 epochs of the 60,000 images take about 6-10 minutes on a 2-core CPU (1,000-1,800
images/s, measured on synthetic 28x28 files); `--config.data.limit=10000` for a quick look.

The convolutional autoencoder of Chollet's blog (3x3 convolutions with max-pooling down to a
4x4x8 = 128-value code, an up-sampling decoder, BCE, batch 128) done with strided layers:
stride-2 3x3 convolutions instead of pooling (32, 64 channels: 28 -> 14 -> 7), a Dense
32-unit linear code (eval.json compares it with PCA-32), and the mirrored decoder (Dense to
7x7x64, stride-2 transposed convolutions with 64 and 32 channels: 7 -> 14 -> 28, and a 3x3
convolution to the pixel logits); adam 1e-3. Pixels stay intensities in [0, 1] (/ 255,
data.scaling='none'), so the Bernoulli likelihood (BCE from logits) applies as in the blog.
Depends on `data.name='mnist'` and `data.dir` (ae_jax/data/images.py).
"""

from ae_jax.config import default_config


def get_config():
    c = default_config()
    c.data.name = "mnist"
    c.data.dir = ""  # the folder of the MNIST files: --config.data.dir=PATH
    c.data.scaling = "none"
    c.model.name = "autoencoder"
    c.model.arch = "conv"
    c.model.conv_features = (32, 64)
    c.model.conv_kernel = 3
    c.model.activation = "relu"
    c.model.latent_dim = 32
    c.model.code_activation = "identity"
    c.model.output_activation = "sigmoid"
    c.loss.recon = "bce"
    c.optim.name = "adam"
    c.optim.learning_rate = 1e-3
    c.train.batch_size = 128
    c.train.epochs = 10
    # Im2col patches of 4096 28x28 images would take ~4 GB; 500 rows keep evaluation small.
    c.train.eval_batch_size = 500
    return c
