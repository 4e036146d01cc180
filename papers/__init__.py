"""One package per paper: ``papers.<name>.scales`` (typed presets of every scale) and its pipelines."""
