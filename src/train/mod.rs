//! The training loop: batches, checkpoints, logs and plots.
