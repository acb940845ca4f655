"""Small building blocks shared by the models."""
from torch import nn


class Scores(nn.Module):
    """Flatten ``(N, 1)`` discriminator outputs to ``(N,)`` scores."""

    def forward(self, x):
        return x.reshape(x.shape[0])
