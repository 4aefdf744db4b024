"""Runs: the settings of a training run, the run itself, and what is kept of it.

    config       TrainConfig: every setting's default, choices and range
    training     from a config to a trained run
    saved        run folders on disk: save_run, load_run, Run
    evaluate     accuracy, loss and confusion counts of a saved run
    experiments  comparisons over seeds and settings; the learning-rate finder
"""
