import math

import pytest
import torch

from ganlab.data.toy import ring_modes
from ganlab.metrics.modes import mode_metrics


def test_mode_metrics_on_constructed_samples():
    modes = ring_modes(8, 1.0).float()
    std = 0.01
    # 3 samples on mode 0, 1 sample 2 std from mode 1, 1 sample 4 std from mode 2, 1 far away
    s = torch.stack([modes[0], modes[0], modes[0], modes[1] + torch.tensor([0.02, 0.0]),
                     modes[2] + torch.tensor([0.0, 0.04]), torch.tensor([0.0, 0.0])])
    m = mode_metrics(s, modes, std)
    assert m["modes_captured"] == 2 and m["modes_total"] == 8
    assert m["high_quality"] == pytest.approx(4 / 6)
    assert m["counts"][:3] == [3, 1, 0]
    q = torch.tensor([0.75, 0.25])
    assert m["reverse_kl"] == pytest.approx(float((q * (q * 8).log()).sum()))


def test_uniform_coverage_has_zero_reverse_kl_and_all_bad_is_inf():
    modes = ring_modes(8, 1.0).float()
    m = mode_metrics(modes.repeat(10, 1), modes, 0.01)
    assert m["modes_captured"] == 8 and m["high_quality"] == 1.0 and m["reverse_kl"] == 0.0
    bad = mode_metrics(torch.full((5, 2), 5.0), modes, 0.01)
    assert bad["modes_captured"] == 0 and math.isinf(bad["reverse_kl"])
    with pytest.raises(ValueError, match=r"samples must be \(N, 2\)"):
        mode_metrics(torch.zeros(3, 3), modes, 0.01)
