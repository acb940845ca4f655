import pytest

from ganlab.config import RunConfig, load_config, preset_names
from ganlab.registry import ConfigError

REQUIRED_PRESETS = {"mnist-mlp", "mnist-lsgan", "mnist-dcgan", "mnist-dcgan-goethe", "ring8",
                    "grid25"}


def test_required_presets_exist_and_validate():
    assert REQUIRED_PRESETS <= set(preset_names())
    for name in preset_names():
        cfg = load_config(name)
        assert isinstance(cfg, RunConfig) and cfg.name == name


def test_overrides_are_typed():
    cfg = load_config("ring8", ["train.iterations=7", "optim.g.lr=1e-3", "optim.d.betas=[0.0, 0.9]",
                                "data.args.std=0.02", "train.progress=false"])
    assert cfg.train.iterations == 7 and cfg.optim.g.lr == pytest.approx(1e-3)
    assert cfg.optim.d.betas == (0.0, 0.9) and cfg.data.args["std"] == 0.02
    assert cfg.train.progress is False


def test_unknown_key_lists_valid_keys(tmp_path):
    p = tmp_path / "run.yaml"
    p.write_text("name: x\ntrain: {iteration: 5}\n")
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    msg = str(exc.value)
    assert str(p) in msg and "train.iteration" in msg and "iterations" in msg and "n_critic" in msg


@pytest.mark.parametrize("override,needle", [
    ("loss.name=wgan_gp", "unknown loss 'wgan_gp'; valid: hinge, lsgan, minimax"),
    ("model.generator.name=big", "model.generator.name: unknown model 'big'"),
    ("model.init=he", "model.init: unknown init 'he'; valid: dcgan, default, kaiming-fan-in"),
    ("data.name=cifar", "data.name: unknown dataset 'cifar'; valid: cifar10, grid25, imagefolder, mnist"),
    ("latent.dist=gauss", "latent.dist: unknown latent distribution 'gauss'"),
    ("train.iterations=many", "train.iterations: expected an integer, got 'many'"),
    ("train.n_critic=0", "train.n_critic: must be at least 1"),
    ("optim.g.name=lion", "optim.g.name: unknown optimizer 'lion'"),
    ("loss.args.gradient-penalty={weight: 1}", "loss.args.gradient-penalty: unknown key for loss"),
    ("regularizers=[{name: r3}]", "regularizers[0].name: unknown trick 'r3'"),
])
def test_bad_values_name_the_key(override, needle):
    with pytest.raises(ConfigError) as exc:
        load_config("ring8", [override])
    assert needle in str(exc.value)


def test_loss_regularizer_args_accepted_for_their_loss():
    cfg = load_config("ring8", ["loss.name=wgan-gp", "loss.args={gradient-penalty: {weight: 5}}"])
    assert cfg.loss.args == {"gradient-penalty": {"weight": 5}}


def test_unknown_config_source():
    with pytest.raises(ConfigError, match="no such config file or preset; presets: cifar10-cgan, cifar10-wgangp, grid25"):
        load_config("nope.yaml")


def test_bad_yaml_names_the_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_config(p)


def test_error_names_the_override_that_wrote_the_bad_value(tmp_path):
    p = tmp_path / "run.yaml"
    p.write_text("data: {name: ring8}\noptim: {g: {lr: -1.0}}\n")
    # the bad value came from --set: the error names that --set, then the file it overrode
    with pytest.raises(ConfigError) as err:
        load_config(p, ["train.iterations=5", "regularizers=[{name: r3}]"])
    msg = str(err.value)
    assert msg.startswith("--set 'regularizers=[{name: r3}]' (over ")
    assert "run.yaml): regularizers[0].name: unknown trick 'r3'; valid: " in msg
    # a bad value that is the file's own is blamed on the file, not on an unrelated --set
    with pytest.raises(ConfigError) as err:
        load_config(p, ["train.iterations=5"])
    assert str(err.value).startswith(f"{p}: optim.g.lr: must be positive")
    # a later --set of the same key wins, and is the one named
    with pytest.raises(ConfigError, match=r"^--set 'optim.g.lr=-2' \(over .*run.yaml\): optim.g.lr"):
        load_config(p, ["optim.g.lr=3", "optim.g.lr=-2"])
    # a misspelt section that only the --set created is that --set's doing too
    with pytest.raises(ConfigError, match=r"^--set 'trian.iterations=5' \(over .*run.yaml\): trian: unknown key"):
        load_config(p, ["trian.iterations=5", "optim.g.lr=1"])
