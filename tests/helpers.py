"""Tiny configs for engine tests: fast models on the 2-D ring."""
from ganlab.config import load_config


def tiny_config(*overrides):
    base = ["model.generator.args={hidden: 16, layers: 2, norm: batch}",
            "model.discriminator.args={hidden: 16, layers: 2}",
            "data.args={n: 512}", "data.batch_size=32", "train.iterations=20",
            "train.log_every=5", "train.sample_every=10", "train.checkpoint_every=5",
            "train.num_samples=64", "train.progress=false"]
    return load_config("ring8", base + list(overrides))
