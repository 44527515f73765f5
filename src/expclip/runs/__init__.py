"""Runs: the jobs that turn stores into heads and result cells. ``fit`` (one head per seed from the stores),
``evaluate`` (datasets × models × prompt sets -> cells) and ``suite`` (which datasets, folds and options),
``ablations/`` (the paper's ablations as presets), ``demo`` (the whole pipeline on tiny models).

May import: ``features``, ``checkpoint``, ``train``, ``zeroshot``, ``metrics``, ``report`` (to write what they
computed) and everything below. Never predict, api or cli.
"""
