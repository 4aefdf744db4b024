"""The seven steps: initialise, predict, loss, gradient, step, repeat, stop.

    init       step 1: initialisation schemes
    steps      the seven steps written by hand, as the article writes them
    models     step 2: Linear, ReLU, simple_net, the named models
    losses     step 3: sigmoid, mnist_loss, cross-entropy; the metrics
    optim      step 5: BasicOptim and the optimizers built on it
    learner    steps 2-7 as one loop (fit -> epoch -> batch), callbacks at its edges
    recorder   what the loop records: each epoch's row of the history, from sums on the device
    callbacks  stopping rules, the one-cycle schedule, the progress display
    augment    random shifts, rotations and scaling of whole batches

This package imports nothing from `runs`, `show`, `cli`, `web` or `distributed`.
"""
