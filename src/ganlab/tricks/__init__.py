"""Stabilisation tricks, each a small object in one or more roles of :mod:`ganlab.hooks`.

Name in a config (``regularizers: [{name: ..., args: {...}}]``), its module and what it does:

- ``label-smoothing`` (targets): one-sided label smoothing, real target ``real`` (0.9)
  (Salimans et al. 2016, sec. 3.4).
- ``noisy-labels`` (targets): real targets drawn from U[real_low, real_high], fake from
  U[fake_low, fake_high] ("ganhacks" trick 6).
- ``flip-labels`` (targets): swap real and fake targets of each example with probability ``p``.
- ``instance-noise`` (d_inputs): Gaussian noise added to every input of D, std annealed linearly
  from ``std`` to ``final_std`` over ``anneal_iters`` (Sønderby et al. 2017; Arjovsky & Bottou
  2017).
- ``pack`` (d_inputs): PacGAN (Lin et al. 2018): D judges ``m`` samples at once, concatenated
  along the feature/channel axis; D must be built for ``m`` times the input size.
- ``diffaugment`` (diffaugment): DiffAugment (Zhao et al. 2020): differentiable colour,
  translation and cutout of every image D sees, real and fake, for small data sets.
- ``replay-buffer`` (d_inputs): D's fake batch mixes in past fakes from a pool (Shrivastava et
  al. 2017).
- ``gradient-penalty`` (penalties): WGAN-GP's penalty (Gulrajani et al. 2017).
- ``r1`` / ``r2`` (penalties): zero-centred gradient penalty on real / fake data,
  ``weight/2 E||grad D||^2``, optionally lazy (every ``interval`` D steps, scaled by
  ``interval``) (Mescheder et al. 2018; Karras et al. 2020 for lazy regularisation).
- ``weight-clip`` (penalties): WGAN's weight clipping (Arjovsky et al. 2017).
- ``consistency`` (consistency): consistency regularization (Zhang et al. 2020): D's scores
  agree on an example and its augmentation (flip and shift for images, noise for vectors);
  ``fakes: true`` adds the fake batch (bCR).
- ``spectral-norm`` (normalization): spectral normalisation of D's (and optionally G's)
  conv/linear weights (Miyato et al. 2018).
- ``virtual-batch-norm`` (normalization): G's (and optionally D's) batch-norm layers normalise
  each example with a fixed reference batch and itself (Salimans et al. 2016, sec. 3.5).
- ``feature-matching`` (matching): G matches the mean of D's features at a named layer on real
  and fake data (Salimans et al. 2016, sec. 3.1); ``replace: true`` drops G's adversarial loss.
- ``historical-averaging`` (averaging): ``weight * ||theta - mean of past theta||^2`` for both
  players (Salimans et al. 2016, sec. 3.3), the mean kept as a running average.
- ``ema`` (averaging): an exponential moving average of G's weights, used for sampling and
  evaluation (Yazıcı et al. 2019).
- ``acgan`` (acgan): the class losses of an ACGAN discriminator (Odena et al. 2017).
- ``schedule`` (schedule): one-sided training (the Tetris experiments): freeze G or D from an
  iteration on, or replace D with a freshly initialised one.
- ``reconstruction`` (reconstruction): the reconstruction term of paired games: pix2pix's
  (Isola et al. 2017), best-of-many (Bhattacharyya et al. 2018), multiple choice
  (Guzman-Rivera et al. 2012) or with an encoded outcome (BicycleGAN, Zhu et al. 2017).
- ``discriminator-rejection`` (filters): samples and evaluation keep each sample with a
  probability from a calibrated copy of D's density-ratio estimate (Azadi et al. 2019).
- ``jacobian-truncation`` (filters): samples and evaluation redraw the latents whose Jacobian
  norm is in the top ``1 - keep`` (Tanielian et al. 2020).

A new trick is one module here (a class in the roles it needs, registered with
``@TRICKS.register``), its import line below, and its test.
"""
from . import (acgan, averaging, consistency, d_inputs, diffaugment, filters,  # noqa: F401
               matching, normalization, penalties, reconstruction, schedule, targets)
from .averaging import EMA, HistoricalAveraging
from .d_inputs import InstanceNoise, Pack, ReplayBuffer
from .filters import DiscriminatorRejection, JacobianTruncation
from .matching import FeatureMatching
from .normalization import SpectralNorm, VirtualBatchNorm, apply_spectral_norm
from .penalties import R1, R2, GradientPenalty, WeightClip
from .reconstruction import Reconstruction
from .schedule import Schedule
from .targets import FlipLabels, LabelSmoothing, NoisyLabels
from .acgan import ACGAN

__all__ = ["ACGAN", "EMA", "DiscriminatorRejection", "FeatureMatching", "FlipLabels",
           "GradientPenalty", "HistoricalAveraging", "InstanceNoise", "JacobianTruncation",
           "LabelSmoothing", "NoisyLabels", "Pack", "R1", "R2", "Reconstruction", "ReplayBuffer",
           "Schedule", "SpectralNorm", "VirtualBatchNorm", "WeightClip", "apply_spectral_norm"]
