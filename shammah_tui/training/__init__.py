"""Training: BatchTrainer and its events."""
