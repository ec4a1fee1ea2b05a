"""Training of the recognition families with accelerate: config, datasets, checkpoints, the loop."""
