"""lora_vs_full: presets (scales.py) and the paper's own pipeline modules."""
