"""The pieces behind `groundup.all`: fastai's vocabulary, built on groundup.

`groundup.all` is the module a reader star-imports; it only gathers names. The
adapters it gathers live here, one module per kind of thing:

  paths.py    `Path` with `.ls()`, the `L` list it returns, `first`
  tensors.py  `tensor`
  untar.py    `URLs` and `untar_data`: MNIST folders built offline from groundup's data
  loaders.py  `DataLoader` over any list of (x, y) pairs, `DataLoaders` with the
              normalisation guard
  learner.py  `SGD` with fastai's signature, and a `Learner` that shows fastai's epoch table
  show.py     `show_image`, `plot_function`
"""
