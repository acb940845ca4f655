import pytest
import torch
from torch import nn

from ganlab.init import apply_init, layers_feeding_relu
from ganlab.models import MODELS, count_params
from ganlab.registry import ConfigError


@pytest.mark.parametrize("name,kwargs,count", [
    ("cs231n-mlp-d", {}, 267_009),
    ("cs231n-mlp-g", {"latent_dim": 4}, 1_858_320),
    ("cs231n-dcgan-d", {}, 1_102_721),
    ("cs231n-dcgan-g", {"latent_dim": 4}, 6_580_801),
])
def test_cs231n_parameter_counts(name, kwargs, count):
    assert count_params(MODELS.build(name, kwargs)) == count


@pytest.mark.parametrize("g,d", [("cs231n-mlp-g", "cs231n-mlp-d"),
                                 ("cs231n-dcgan-g", "cs231n-dcgan-d"),
                                 ("goethe-g", "goethe-d")])
def test_image_pairs_shapes_and_range(g, d):
    G, D = MODELS.build(g, {"latent_dim": 8}), MODELS.build(d, {})
    x = G(torch.randn(5, 8))
    assert x.shape == (5, 1, 28, 28)
    assert x.abs().max() <= 1.0  # tanh output in the data's [-1, 1]
    assert D(x).shape == (5,)


def test_goethe_generator_takes_4d_noise_and_both_upsamplers():
    for up in ("transposed", "pixelshuffle"):
        G = MODELS.build("goethe-g", {"latent_dim": 100, "depth": 2, "upsample": up})
        assert G(torch.ones(16, 100, 1, 1)).shape == (16, 1, 28, 28)


def _feature_sizes(model, x):
    sizes = []
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            m.register_forward_hook(lambda mod, i, o: sizes.append(o.shape[-1]))
    model(x)
    return sizes


def test_goethe_feature_map_sizes():
    D = MODELS.build("goethe-d", {"depth": 1})
    assert _feature_sizes(D, torch.randn(2, 1, 28, 28)) == [14, 7, 7]
    G = MODELS.build("goethe-g", {"latent_dim": 10, "depth": 1})
    assert _feature_sizes(G, torch.randn(2, 10)) == [14, 28, 28]


@pytest.mark.parametrize("norm,cls", [("batch", nn.BatchNorm2d), ("instance", nn.InstanceNorm2d),
                                      ("layer", nn.GroupNorm), ("none", None)])
def test_goethe_normalisation_every_layer_but_first_and_last(norm, cls):
    D = MODELS.build("goethe-d", {"depth": 1, "norm": norm})
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in D.modules() if cls is not None and isinstance(m, cls)]
    assert len(norms) == (len(convs) - 1 if cls else 0)  # the first conv has none; head is linear
    # no bias before a norm; a bias where no norm follows
    assert convs[0].bias is not None
    assert all((c.bias is None) == (cls is not None) for c in convs[1:])
    G = MODELS.build("goethe-g", {"latent_dim": 10, "depth": 1, "norm": norm})
    gnorms = [m for m in G.modules() if cls is not None and isinstance(m, cls)]
    assert len(gnorms) == (2 if cls else 0)


def test_unknown_norm_is_a_clear_error():
    with pytest.raises(ConfigError, match="norm.*valid: batch, instance, layer, none"):
        MODELS.build("goethe-d", {"norm": "group"}, where="model.discriminator")
    with pytest.raises(ConfigError, match="instance normalisation needs feature maps"):
        MODELS.build("toy-mlp-g", {"norm": "instance"}, where="model.generator")
    with pytest.raises(ConfigError, match="unknown key 'depht'.*valid: channels, depth, norm"):
        MODELS.build("goethe-d", {"depht": 3}, where="model.discriminator")


def test_init_dcgan_statistics():
    torch.manual_seed(0)
    G = MODELS.build("goethe-g", {"latent_dim": 100, "depth": 4})
    apply_init(G, "dcgan")
    convs = [m for m in G.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    w = torch.cat([m.weight.flatten() for m in convs])
    assert w.mean().abs() < 1e-3 and abs(w.std().item() - 0.02) < 1e-3
    bn = torch.cat([m.weight for m in G.modules() if isinstance(m, nn.BatchNorm2d)])
    assert abs(bn.mean().item() - 1) < 0.01 and abs(bn.std().item() - 0.02) < 0.01
    assert all(m.bias is None or (m.bias == 0).all() for m in convs)


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
def test_init_kaiming_bound_and_zero_bias(mode):
    D = MODELS.build("cs231n-dcgan-d", {})
    apply_init(D, f"kaiming-{mode.replace('_', '-')}")
    conv = D[3]  # Conv2d(32, 64, 5)
    fan = 32 * 25 if mode == "fan_in" else 64 * 25
    bound = (6.0 / fan) ** 0.5  # gain sqrt(2) * sqrt(3 / fan)
    assert conv.weight.abs().max() <= bound
    assert conv.weight.abs().max() > 0.95 * bound
    assert (conv.bias == 0).all()


def test_init_xavier_bound():
    D = MODELS.build("cs231n-mlp-d", {})
    apply_init(D, "xavier")
    lin = D[1]
    bound = (6.0 / (784 + 256)) ** 0.5
    assert lin.weight.abs().max() <= bound and lin.weight.abs().max() > 0.95 * bound


def test_init_smart_only_touches_layers_before_relu():
    torch.manual_seed(0)
    seq = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(),   # feeds a ReLU via BN
                        nn.Conv2d(8, 8, 3), nn.LeakyReLU(0.2),              # not a ReLU
                        nn.Flatten(), nn.Linear(8, 4), nn.ReLU(),           # feeds a ReLU
                        nn.Linear(4, 1))                                     # output
    before = {k: v.clone() for k, v in seq.state_dict().items()}
    assert list(layers_feeding_relu(seq)) == [seq[0], seq[6]]
    apply_init(seq, "smart")
    assert (seq[6].bias == 0.01).all() and (seq[0].bias == 0.01).all()
    assert torch.equal(seq[3].weight, before["3.weight"])   # default kept
    assert torch.equal(seq[8].weight, before["8.weight"])
    assert not torch.equal(seq[6].weight, before["6.weight"])
    assert seq[6].weight.abs().max() <= (6.0 / 8) ** 0.5


@pytest.mark.parametrize("norm", ["batch", "layer", "none"])
def test_toy_mlp_norms(norm):
    G = MODELS.build("toy-mlp-g", {"latent_dim": 2, "hidden": 8, "layers": 2, "norm": norm})
    D = MODELS.build("toy-mlp-d", {"hidden": 8, "layers": 2, "norm": norm})
    cls = {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm, "none": None}[norm]
    for model in (G, D):
        linears = [m for m in model if isinstance(m, nn.Linear)]
        assert sum(cls is not None and isinstance(m, cls) for m in model) == (2 if cls else 0)
        assert all((m.bias is None) == (cls is not None) for m in linears[:-1])
    # layer norm is per example: an example's output does not depend on the rest of the batch
    x = torch.randn(6, 2)
    if norm == "layer":
        assert torch.allclose(D(x)[:3], D(x[:3]), atol=1e-6)
