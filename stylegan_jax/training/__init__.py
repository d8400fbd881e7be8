"""Training: progressive schedule, train state, data-parallel steps, checkpoints and the loop."""
