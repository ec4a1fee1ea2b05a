"""Experiments that use both packages and measure what the project's additions buy (the outlier experiment: SynthMEAD
scored by a `recognition` classifier, NED trained on it by `ned_outlier` with and without lambda).

A top-level package, not part of either library: it stands above both (ned_outlier never imports recognition), and
unlike the stand-alone scripts of benchmarks/ it is a tested module that scripts/run_ned_experiment.py drives. It runs
from a checkout (the scripts put the repository on sys.path); it is not installed with the two packages.
"""
