"""prunability: presets (scales.py) and the paper's own pipeline modules."""
