"""The Tetris emulator GAN through the engine: paired conditioning, models, evaluation."""
import numpy as np
import pytest
import torch
from torch import nn

from ganlab import Game, load_config
from ganlab.errors import ConfigError
from ganlab.models import MODELS, count_params
from ganlab.models.encoders import ResidualClusters
from ganlab.noise import CategoricalPrior
from ganlab.hooks import Penalty, StepBatch
from ganlab.run import resume, start, train
from ganlab.tetris.encoding import one_hot, to_boards
from ganlab.tetris.task import render
from ganlab.tetris.evaluate import evaluate_pairs, predict
from ganlab.tetris.recordings import record, record_pairs
from ganlab.tetris.rules import PIECE_NAMES, SPAWN_MASKS


def small(*extra):
    return load_config("tetris-original", ["data.args={record: 400}", "data.batch_size=8",
                                           "train.iterations=4", "train.progress=false",
                                           "train.sample_every=2", "train.log_every=2",
                                           *extra])


def test_models_shapes():
    G = MODELS.build("tetris-g", {"latent_dim": 4})
    x = one_hot(np.zeros((3, 22, 10), np.int64))
    p = G(torch.rand(3, 4), x)
    assert p.shape == (3, 2, 22, 10) and torch.allclose(p.sum(1), torch.ones(3, 22, 10))
    assert [m.in_channels for m in G.loc if isinstance(m, nn.Conv2d)][0] == 2 + 4
    assert G.head[0].in_channels == 16 + 10  # local features + broadcast global features
    for name, args in [("tetris-d", {}), ("tetris-d-more-conv", {}),
                       ("tetris-d-more-conv", {"batchnorm": True}),
                       ("tetris-d-more-conv-pad", {}), ("tetris-d-more-conv-pad",
                                                         {"batchnorm": True})]:
        D = MODELS.build(name, args)
        assert D(p, x).shape == (3,)
        has_bn = any(isinstance(m, nn.BatchNorm2d) for m in D.modules())
        assert has_bn == (name == "tetris-d" or args.get("batchnorm", False))
    assert count_params(MODELS.build("tetris-d", {})) == 5521


def test_engine_pairs_fakes_with_the_real_boards():
    seen = []

    class Spy(Penalty):
        name = "spy"

        def d_penalty(self, b):
            seen.append((b.real_cond.clone(), b.fake_cond.clone()))

    game = Game.from_config(small())
    game.tricks.add(Spy())
    game.play(3)
    for real_cond, fake_cond in seen:
        assert torch.equal(real_cond, fake_cond)  # G predicts from the same boards t
        assert real_cond.shape == (8, 2, 22, 10)
    assert game.data.examples.shape[1:] == (2, 22, 10)


def test_training_writes_board_renderings(tmp_path):
    from ganlab.run import train
    game = train(small(), tmp_path / "run")
    img = tmp_path / "run" / "samples" / "iter_0000004.png"
    assert img.is_file()
    grid = render(game.sampler.grid_cond[:2], game.examples[:2], game.examples[:2], scale=1,
                  titles=False)
    assert grid.shape == (2 * 22 + 1, 3 * 10 + 2, 3)
    truth = to_boards(game.examples[:1])[0].numpy().astype(np.int64)
    assert (grid[:22, 22:32, 0] == 255 * truth).all()  # the third panel is the truth


def test_training_from_a_recorded_folder(tmp_path):
    record(tmp_path / "rec", 64, 16, seed=3, compact=False)
    cfg = small(f"data.path={tmp_path / 'rec'}")
    game = Game.from_config(cfg)
    assert len(game.data) == 64
    assert len(game.play(2)["d_loss"]) == 2


class Oracle(nn.Module):
    """A perfect emulator for known pairs: the true fall, or noise-chosen spawn pieces."""

    def __init__(self, pairs):
        super().__init__()
        self.table = {p[0].tobytes(): p[1] for p in pairs.astype(np.int64)}
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, z, x):
        boards = to_boards(x).numpy().astype(np.int64)
        out = []
        for b, zz in zip(boards, z):
            if not b[0].any() and self.table[b.tobytes()][0].any():  # a spawn
                nxt = b.copy()
                nxt[:3] |= SPAWN_MASKS[int(zz[0] * 7) % 7].astype(np.int64)
            else:
                nxt = self.table[b.tobytes()]
            out.append(nxt)
        return one_hot(np.stack(out))


def test_evaluation_of_a_perfect_emulator():
    pairs = record_pairs(600, np.random.default_rng(5))
    _, idx = np.unique(pairs[:, 0].reshape(len(pairs), -1), axis=0, return_index=True)
    pairs = pairs[np.sort(idx)]  # one truth per board t for the lookup
    game = Game.from_config(small())
    game.players.G = Oracle(pairs)
    m = evaluate_pairs(game, pairs, diversity_samples=140)
    assert m["fall_accuracy"] == 1.0 and m["spawn_recall"] == 1.0
    assert m["spawn_precision"] == 1.0 and m["spawn_validity"] == 1.0
    assert m["piece_tv"] < 0.05 and set(m["piece_counts"]) == set(PIECE_NAMES)
    assert m["board_accuracy"] <= 1.0
    preds = predict(game, pairs[:5, 0], samples=3)
    assert preds.shape == (5, 3, 22, 10) and preds.dtype == np.int8


def test_predict_and_evaluate_commands(tmp_path):
    import subprocess
    import sys

    from ganlab.run import train
    train(small(), tmp_path / "run")
    record(tmp_path / "rec", 20, 30, seed=9)
    boards = np.load(tmp_path / "rec" / "test" / "0.npy")[:1].repeat(3, 0)  # (3, 22, 10)
    np.save(tmp_path / "b.npy", boards)

    def ganlab(*a):
        return subprocess.run([sys.executable, "-m", "ganlab", "tetris", *a],
                              capture_output=True, text=True, timeout=300)

    r = ganlab("predict", str(tmp_path / "run"), "--input", str(tmp_path / "b.npy"),
               "--samples", "4", "--out", str(tmp_path / "p.npy"))
    assert r.returncode == 0, r.stderr
    p = np.load(tmp_path / "p.npy")
    assert p.shape == (3, 4, 22, 10) and p.dtype == np.int8 and set(np.unique(p)) <= {0, 1}
    np.save(tmp_path / "bad.npy", np.zeros((3, 20, 10)))
    r = ganlab("predict", str(tmp_path / "run"), "--input", str(tmp_path / "bad.npy"),
               "--out", str(tmp_path / "x.npy"))
    assert r.returncode == 2 and "expected boards of shape (N, 22, 10)" in r.stderr
    np.save(tmp_path / "vals.npy", np.full((1, 22, 10), 3))
    r = ganlab("predict", str(tmp_path / "run"), "--input", str(tmp_path / "vals.npy"),
               "--out", str(tmp_path / "x.npy"))
    assert r.returncode == 2 and "must be 0 or 1" in r.stderr
    r = ganlab("evaluate", str(tmp_path / "run" / "checkpoints" / "latest.pt"), "--data",
               str(tmp_path / "rec"), "--samples", "5", "--json", str(tmp_path / "m.json"))
    assert r.returncode == 0, r.stderr
    import json
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["n"] == 30 and "fall_accuracy" in m and "| board_accuracy_ceiling |" in r.stdout
    r = ganlab("rollout", str(tmp_path / "run"), "--frames", "25", "--gif", str(tmp_path / "r.gif"))
    assert r.returncode == 0, r.stderr
    assert "rollout legality" in r.stdout and "spawns per piece: I" in r.stdout
    assert (tmp_path / "r.gif").stat().st_size > 0


class RuleOracle(nn.Module):
    """The rule engine as an emulator (state tracked alongside): rollouts must be all legal."""

    def __init__(self):
        super().__init__()
        from ganlab.tetris.rules import TetrisEngine
        self.make = lambda: TetrisEngine(rng=np.random.default_rng(0))
        self.eng = self.make()
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, z, x):
        b = to_boards(x)[0].numpy().astype(np.int32)
        if not b.any():
            self.eng = self.make()
        nxt = self.eng.tick()
        if nxt is None:  # game over: show the final board again (the rollout restarts)
            nxt = b
        return one_hot(nxt[None])


def test_rollout_of_the_rules_is_fully_legal(tmp_path):
    from ganlab.tetris.rollout import rollout, save_gif
    game = Game.from_config(small())
    game.players.G = RuleOracle()
    r = rollout(game, 400, keep_frames=True, keep_errors=True)
    assert r["legality"] == 1.0 and r["games_finished"] >= 1 and r["errors"] == []
    assert sum(r["spawns"].values()) > 10
    gif = save_gif(r["frames_kept"][:50], tmp_path / "g.gif")
    from PIL import Image
    assert Image.open(gif).n_frames == 50
    game.players.G = MODELS.build("tetris-g", {"latent_dim": 4})  # an untrained emulator is not legal
    bad = rollout(game, 30, keep_errors=True)
    assert bad["legality"] < 0.5 and "errors" not in rollout(game, 3)
    assert len(bad["errors"]) == 30 - bad["legal"]  # each illegal transition, as it was
    from ganlab.tetris.metrics import legal_fall, spawn_piece
    for t, before, after in bad["errors"]:
        assert 0 <= t < 30 and before.shape == after.shape == (22, 10)
        assert spawn_piece(before, after)[0] < 0 and not legal_fall(before, after)


def test_evaluation_during_training_logs_both_splits_and_keeps_the_best(tmp_path):
    from ganlab.run import train
    from ganlab.tracking import read_jsonl
    cfg = small("data.args={record: 400, eval_train: 50, eval_test: 60, eval_samples: 3}",
                "train.eval_every=2", "train.best_metric=test/board_accuracy")
    game = train(cfg, tmp_path / "run")
    rows = [r for r in read_jsonl(tmp_path / "run" / "metrics.jsonl") if r["kind"] == "eval"]
    assert [r["iteration"] for r in rows] == [2, 4]
    for key in ("train/fall_accuracy", "test/spawn_recall", "test/d_accuracy", "test/g_loss",
                "test/combined_accuracy", "test/board_accuracy_ceiling", "train/n"):
        assert key in rows[0], key
    assert rows[0]["test/n"] == 60 and rows[0]["train/n"] == 50
    best = max(r["test/board_accuracy"] for r in rows)
    from ganlab.checkpoint import safe_load
    assert safe_load(tmp_path / "run" / "checkpoints" / "best.pt")["best_value"] == best
    assert game.progress.best_value == best
    with pytest.raises(Exception, match="best_metric: 'test/nope' is not a metric"):
        Game.from_config(small("train.eval_every=1", "train.best_metric=test/nope")).play(1)


def test_reconstruction_best_of_many():
    from ganlab.tricks import Reconstruction
    game = Game.from_config(small("regularizers=[{name: reconstruction, args: {k: 3}}]"))
    rec = game.tricks.all[0]
    real = one_hot(np.zeros((2, 22, 10), np.int64))  # all empty
    good = real.clone()
    bad = one_hot(np.ones((2, 22, 10), np.int64))
    half = 0.5 * torch.ones_like(real)
    outputs = iter([good[:1].expand(2, -1, -1, -1).clone(), half])
    game.step.generate = lambda z, c: next(outputs)
    fake = torch.cat([bad[:1], half[:1]])  # example 0: bad, then good, then half
    pen = rec.g_penalty(StepBatch(real, fake, None, None, None, 0, None, real))
    per_cell_half = -np.log(0.5)
    # example 0: min(bad, good, half) = good (~0); example 1: min(half, good, half) = good
    assert pen.item() == pytest.approx(0.0, abs=1e-5)
    one = Reconstruction(k=1)
    one.setup(game.ctx)
    pen1 = one.g_penalty(StepBatch(real, half, None, None, None, 0, None, real))
    assert pen1.item() == pytest.approx(per_cell_half, rel=1e-5)  # plain CE when k = 1
    with pytest.raises(Exception, match="needs a paired game"):
        Game.from_config(tiny_ring("regularizers=[{name: reconstruction}]"))


def tiny_ring(*extra):
    from helpers import tiny_config
    return tiny_config(*extra)


def emulator_small(*extra):
    return load_config("tetris", ["data.args={record: 400}", "data.batch_size=8",
                                  "train.iterations=4", "train.progress=false",
                                  "train.sample_every=2", "train.log_every=2",
                                  "model.generator.args={width: 4, depth: 2}", *extra])


def test_categorical_latent_is_uniform_one_hot():
    from ganlab.noise import sample_latent
    z = sample_latent("categorical", 7000, 7, torch.Generator().manual_seed(0))
    assert z.shape == (7000, 7) and torch.equal(z.sum(1), torch.ones(7000))
    assert set(z.unique().tolist()) == {0.0, 1.0}
    counts = z.sum(0)
    assert ((counts - 1000).abs() < 150).all(), counts  # about 4.5 sd of a binomial count


def test_a_learnt_categorical_prior_draws_its_probabilities_and_refuses_bad_ones():
    prior = CategoricalPrior(torch.tensor([2.0, 0.0, 1.0, 1.0]))  # normalised; code 1 never
    z = prior(8000, 4, torch.Generator().manual_seed(0))
    assert z.shape == (8000, 4) and torch.equal(z.sum(1), torch.ones(8000))
    counts = z.sum(0)
    assert counts[1] == 0 and ((counts - torch.tensor([4000, 0, 2000, 2000])).abs() < 200).all()
    for bad in ([0.0, 0.0], [1.0, -0.5], [float("nan"), 1.0]):
        with pytest.raises(ValueError, match="a categorical prior needs"):
            CategoricalPrior(torch.tensor(bad))
    with pytest.raises(ValueError, match="the prior has 4 categories, latent.dim is 3"):
        prior(5, 3)
    assert prior(0, 4).shape == (0, 4)  # no draw, as the uniform samplers (a trick may ask)
    game = Game.from_config(emulator_small())
    game.set_latent_prior(torch.tensor([0.0, 0, 0, 0, 0, 0, 1]))  # training and sampling
    assert (game.sample_latent(20).argmax(1) == 6).all()
    assert (game.ctx.noise(20).argmax(1) == 6).all()
    with pytest.raises(ValueError, match="latent.dist categorical with latent.dim 3"):
        game.set_latent_prior(torch.ones(3))
    uniform = Game.from_config(small())
    with pytest.raises(ValueError, match="this run has uniform01 of dim 4"):
        uniform.set_latent_prior(torch.ones(4))


def test_gravity_features_count_filled_cells_above():
    from ganlab.tetris.models import gravity_features
    b = np.zeros((22, 10), np.int64)
    b[5:8, 2] = 1  # a column segment: rows 5, 6, 7
    f = gravity_features(one_hot(b[None]))[0]
    above = f[0] * 0 + f[1] * 1 + f[2] * 2  # the one-hot count, capped at 2
    assert torch.equal(f[:3].sum(0), torch.ones(22, 10))
    assert [above[r, 2].item() for r in (4, 5, 6, 7, 8, 21)] == [0, 0, 1, 2, 2, 2]
    assert above[:, 3].sum() == 0  # other columns see nothing above
    assert f[3, 0, 0] == 0 and f[3, 21, 0] == 1 and f[4, 0, 0] == 0 and f[4, 0, 9] == 1


def test_emulator_generator_is_batch_independent():
    G = MODELS.build("tetris-emulator", {"latent_dim": 7, "width": 8, "depth": 3})
    for p in G.parameters():  # the residual branches start at zero; make them matter
        nn.init.normal_(p, std=0.2)
    pairs = record_pairs(6, np.random.default_rng(0))
    x = one_hot(pairs[:, 0])
    z = torch.eye(7)[:6]
    out = G(z, x)
    assert out.shape == (6, 2, 22, 10) and torch.allclose(out.sum(1), torch.ones(6, 22, 10))
    alone = torch.cat([G(z[i:i + 1], x[i:i + 1]) for i in range(6)])
    assert torch.allclose(out, alone, atol=1e-6)  # no batch statistics anywhere
    assert not torch.allclose(G(torch.eye(7)[[1]], x[:1]), G(torch.eye(7)[[2]], x[:1]))


def test_emulator_copy_skip_keeps_board_t_where_the_head_is_silent():
    x = one_hot(record_pairs(4, np.random.default_rng(1))[:, 0])
    z = torch.eye(7)[:4]
    plain = MODELS.build("tetris-emulator", {"width": 8, "depth": 2})
    skip = MODELS.build("tetris-emulator", {"width": 8, "depth": 2, "copy_init": 3.0})
    assert plain.copy is None and float(skip.copy) == 3.0
    for G in (plain, skip):
        nn.init.zeros_(G.head[-1].weight)
        nn.init.zeros_(G.head[-1].bias)
    assert torch.allclose(plain(z, x), torch.full_like(x, 0.5))  # no opinion at all
    out = skip(z, x)
    assert torch.equal(out.argmax(1), x.argmax(1))  # the skip alone copies board t
    assert torch.allclose(out.max(1).values, torch.sigmoid(torch.tensor(3.0)).expand(4, 22, 10))
    skip.zero_grad()
    skip(z, x)[:, 1].sum().backward()
    assert skip.copy.grad is not None and skip.copy.grad != 0  # learnt with the rest


def _spawn_and_fall():
    """Example 0: a spawn (empty board -> I piece); example 1: a fall (an O in rows 0-1)."""
    x = np.zeros((2, 22, 10), np.int64)
    y = np.zeros((2, 22, 10), np.int64)
    y[0, :3] = SPAWN_MASKS[PIECE_NAMES.index("I")]
    x[1, :3] = SPAWN_MASKS[PIECE_NAMES.index("O")]
    y[1, 1:4] = SPAWN_MASKS[PIECE_NAMES.index("O")]
    return one_hot(x), one_hot(y)


def test_multiple_choice_reconstruction_penalises_only_the_closest_code():
    from ganlab.tetris.task import stochastic
    game = Game.from_config(emulator_small(
        "regularizers=[{name: reconstruction, args: {weight: 1, codes: all}}]"))
    rec = game.tricks.all[0]
    cond, real = _spawn_and_fall()
    assert stochastic(cond, real).tolist() == [True, False]
    half = torch.full_like(real, 0.5)
    calls = []

    def generate(z, c):  # code 4 predicts the spawn's truth exactly; every other code: 0.5
        calls.append(z.shape[0])
        out = half[:1].repeat(len(z), 1, 1, 1)
        out[z.argmax(1) == 4] = real[0]
        return out

    game.step.generate = generate
    fake = half.clone()  # the sampled codes' predictions: 0.5 everywhere
    pen = rec.g_penalty(StepBatch(real, fake, None, None, None, 0, cond, cond))
    assert calls == [7]  # only the spawn is predicted under all seven codes
    # spawn: min over codes = 0 (code 4); fall: the sampled code's CE, -log 0.5 per cell
    assert pen.item() == pytest.approx(-np.log(0.5) / 2, rel=1e-4)
    with pytest.raises(Exception, match="needs latent.dist: categorical"):
        Game.from_config(emulator_small(
            "latent={dim: 7, dist: uniform01}",
            "regularizers=[{name: reconstruction, args: {codes: all}}]"))


def test_diversity_hinge_keeps_codes_apart():
    game = Game.from_config(emulator_small(
        "regularizers=[{name: reconstruction, args: {weight: 0, codes: all, diversity: 2, "
        "margin: 4}}]"))
    rec = game.tricks.all[0]
    cond, real = _spawn_and_fall()
    same = lambda z, c: real[:1].repeat(len(z), 1, 1, 1)  # every code: the same piece
    game.step.generate = same
    pen = rec.g_penalty(StepBatch(real, real.clone(), None, None, None, 0, cond, cond))
    assert pen.item() == pytest.approx(2 * 4)  # distance 0 everywhere: the whole margin

    def pieces(z, c):  # code i spawns piece i: two one-hot cells differ at least
        y = np.zeros((len(z), 22, 10), np.int64)
        for i, k in enumerate(z.argmax(1).tolist()):
            y[i, :3] = SPAWN_MASKS[k]
        return one_hot(y)

    game.step.generate = pieces
    pen = rec.g_penalty(StepBatch(real, real.clone(), None, None, None, 0, cond, cond))
    assert pen.item() == pytest.approx(0.0)


def test_spawned_piece_reads_the_outcome_of_every_pair():
    from ganlab.tetris.task import spawned_piece
    from ganlab.tetris.metrics import spawn_piece
    pairs = record_pairs(3000, np.random.default_rng(3))
    from ganlab.tetris.metrics import actual_spawns
    x, y = pairs[:, 0], pairs[:, 1]
    got = spawned_piece(one_hot(x), one_hot(y)).numpy()
    assert np.array_equal(got, spawn_piece(x, y))  # the metric's reading, pair for pair
    act = actual_spawns(x, y)
    assert (got[~act] == -1).all() and (got[act] >= 0).all()  # every spawn has an outcome
    # spawns onto a stack in row 1 cover locked cells: read by union, as the ruling says
    assert (act & ((y - x)[:, :3].sum((1, 2)) < 4)).sum() >= 3
    assert set(got.tolist()) == set(range(-1, 7))  # falls and all seven pieces occur
    noisy = y.copy()
    noisy[:, 21, 0] ^= 1  # a changed bottom row: no pair is a spawn any more
    assert (spawned_piece(one_hot(x), one_hot(noisy)).numpy() == -1).all()


def test_encoded_reconstruction_trains_each_spawn_under_its_own_code():
    game = Game.from_config(emulator_small(
        "regularizers=[{name: reconstruction, args: {weight: 1, codes: encoded}}]"))
    rec = game.tricks.all[0]
    cond, real = _spawn_and_fall()
    half = torch.full_like(real, 0.5)
    seen = []

    def generate(z, c):  # only the I piece's code predicts the spawn exactly
        seen.append(z.argmax(1).tolist())
        out = half[:1].repeat(len(z), 1, 1, 1)
        out[z.argmax(1) == PIECE_NAMES.index("I")] = real[0]
        return out

    game.step.generate = generate
    pen = rec.g_penalty(StepBatch(real, half.clone(), None, None, None, 0, cond, cond))
    assert seen == [[PIECE_NAMES.index("I")]]  # the spawn, under the I code; the fall: sampled
    assert pen.item() == pytest.approx(-np.log(0.5) / 2, rel=1e-4)
    bad = Game.from_config(emulator_small(
        "latent={dim: 3, dist: categorical}",
        "regularizers=[{name: reconstruction, args: {codes: encoded}}]"))
    z_spawn = np.zeros((1, 22, 10), np.int64)
    z_spawn[0, :3] = SPAWN_MASKS[PIECE_NAMES.index("Z")]  # outcome 6: no code for it
    zc, zr = one_hot(np.zeros((1, 22, 10), np.int64)), one_hot(z_spawn)
    with pytest.raises(ValueError, match="outcome 6 but the latent has only 3 codes"):
        bad.tricks.all[0].g_penalty(StepBatch(zr, zr.clone(), None, None, None, 0, zc, zc))


def test_evaluation_without_a_train_split(tmp_path):
    game = Game.from_config(emulator_small(
        "data.args={record: 400, eval_train: 0, eval_test: 30, eval_samples: 2}"))
    m = game.data.task.evaluate(game)  # no empty train split to crash on
    assert m["test/n"] == 30 and not any(k.startswith("train/") for k in m)



def test_virtual_batch_norm_on_the_paired_generator():
    game = Game.from_config(small("regularizers=[{name: virtual-batch-norm, args: {size: 16}}]"))
    z_ref, c_ref = game.G.vbn_reference_0, game.G.vbn_reference_1
    assert z_ref.shape == (16, 4) and c_ref.shape == (16, 2, 22, 10)
    conds = game.data.conditions
    assert all((conds == c).flatten(1).all(1).any() for c in c_ref)  # boards of the data set
    assert len(game.play(2)["g_loss"]) == 2
    game.G.eval()
    z, c = torch.rand(6, 4), conds[:6]
    assert torch.allclose(game.G(z, c)[:2], game.G(z[:2], c[:2]), atol=1e-6)


class _NoChange(nn.Module):
    def forward(self, z, cond):  # a predictor that has learnt "board t+1 is board t"
        return cond


def test_residual_clusters_find_the_outcomes_the_predictor_cannot_tell():
    gen = torch.Generator().manual_seed(0)
    n = 300
    bits = (torch.rand(n, 6, 5, generator=gen) < 0.4).long()
    bits[:, :2] = 0  # the top two rows empty on board t
    outcome = torch.randint(-1, 3, (n,), generator=gen)  # -1: nothing random happened
    patterns = torch.zeros(3, 6, 5, dtype=torch.long)
    patterns[0, 0, 1:4] = 1
    patterns[1, :2, 2] = 1
    patterns[2, 0, 0] = patterns[2, 1, 4] = 1
    after = bits.clone()
    for k in range(3):
        after[outcome == k, :2] = patterns[k, :2]
    two = lambda b: torch.stack([1 - b, b], 1).float()  # noqa: E731 (one-hot over 2 kinds)
    cond, real = two(bits), two(after)
    enc = ResidualClusters(_NoChange(), codes=3)
    assert (enc(cond, real) == -1).all()  # nothing is known before the fit
    assert enc.unpredictable(cond, real) == int((outcome >= 0).sum())
    info = enc.fit(cond, real, seed=0)
    assert info["random"] == int((outcome >= 0).sum()) and info["pairs"] == n
    code = enc(cond, real)
    assert (code[outcome < 0] == -1).all()
    firsts = [code[outcome == k] for k in range(3)]
    assert all((c == c[0]).all() for c in firsts)  # each outcome has one code ...
    assert len({int(c[0]) for c in firsts}) == 3  # ... and no two share one
    assert info["outcomes"] == 3 and torch.allclose(enc.prior, torch.full((3,), 1 / 3).double()
                                                    .to(enc.prior.dtype))
    # more codes than outcomes: the spare code is left empty and the prior never draws it
    wide = ResidualClusters(_NoChange(), codes=4)
    info = wide.fit(cond, real, seed=0)
    assert info["outcomes"] == 3 and (wide.prior == 0).sum() == 1
    assert torch.allclose(wide.prior.sum(), torch.tensor(1.0, dtype=wide.prior.dtype))
    assert not (wide(cond, real) == int(wide.prior.argmin())).any()
    shares = ResidualClusters(_NoChange(), codes=3, prior="shares")
    shares.fit(cond, real, seed=0)
    seen = shares(cond, real)
    expect = torch.stack([(seen == k).sum() for k in range(3)]) / (seen >= 0).sum()
    assert torch.allclose(shares.prior.float(), expect.float())
    # a few determined pairs the predictor gets wrong (two cells each, scattered): k-means
    # gives them a spare cluster, and the share rule keeps it out of the outcomes
    wrong = real.clone()
    junk = (outcome < 0).nonzero().flatten()[:6]
    for j, i in enumerate(junk):
        wrong[i, :, 3 + j % 3, j % 5] = 1 - wrong[i, :, 3 + j % 3, j % 5]
        wrong[i, :, 5, (j + 2) % 5] = 1 - wrong[i, :, 5, (j + 2) % 5]
    spare = ResidualClusters(_NoChange(), codes=4)
    info = spare.fit(cond, wrong, seed=0)
    assert info["random"] == int((outcome >= 0).sum()) + 6 and info["outcomes"] == 3
    assert (spare(cond, wrong)[junk] == -1).all() and (spare.prior > 0).sum() == 3
    assert torch.equal(spare(cond, wrong)[outcome >= 0] >= 0, torch.ones(int((outcome >= 0)
                                                                           .sum()), dtype=bool))
    # as many determined pairs wrong as an outcome has pairs, each in other cells: the share rule
    # keeps their cluster, the coherence rule (an outcome is the same change on every board) not
    many = real.clone()
    lots = (outcome < 0).nonzero().flatten()[:int((outcome == 0).sum())]
    for j, i in enumerate(lots):
        many[i, :, 2 + j % 4, j % 5] = 1 - many[i, :, 2 + j % 4, j % 5]
        many[i, :, 2 + (j // 4) % 4, (j // 3) % 5] = 1 - many[i, :, 2 + (j // 4) % 4, (j // 3) % 5]
    lax = ResidualClusters(_NoChange(), codes=4, coherence=0.0).fit(cond, many, seed=0)
    assert lax["outcomes"] == 4  # the junk kept as a fourth outcome when coherence is off
    strict = ResidualClusters(_NoChange(), codes=4)
    info = strict.fit(cond, many, seed=0)
    assert info["outcomes"] == 3 and min(info["coherence"]) < 0.9 <= sorted(info["coherence"])[1]
    assert (strict(cond, many)[lots] == -1).float().mean() > 0.9
    assert (strict(cond, many)[outcome >= 0] >= 0).all()
    # as many codes as outcomes and the errors besides: k-means has one cluster too few and
    # an outcome goes in with the errors, an incoherent cluster that is no outcome; spare
    # clusters keep every outcome apart, one code each, and the errors read as determined
    tight = ResidualClusters(_NoChange(), codes=3).fit(cond, many, seed=0)
    assert tight["outcomes"] == 2 and min(tight["coherence"]) < 0.9  # one outcome lost
    roomy = ResidualClusters(_NoChange(), codes=3, clusters=6)
    info = roomy.fit(cond, many, seed=0)
    assert info["outcomes"] == info["codes used"] == 3 and len(info["code"]) == 6
    assert sorted(c for c in info["code"] if c >= 0)[0] == 0 and roomy.prior.shape == (3,)
    assert torch.allclose(roomy.prior.float(), torch.full((3,), 1 / 3))
    read = roomy(cond, many)
    assert (read[lots] == -1).float().mean() > 0.9
    firsts = [read[outcome == k] for k in range(3)]
    assert all((c == c[0]).all() and c[0] >= 0 for c in firsts)
    assert len({int(c[0]) for c in firsts}) == 3
    assert roomy.deltas((2, 6, 5)).shape == (3, 2, 6, 5)  # one change per code
    with pytest.raises(ValueError, match="clusters >= codes"):
        ResidualClusters(_NoChange(), codes=3, clusters=2)
    with pytest.raises(ValueError, match="coherence"):
        ResidualClusters(_NoChange(), codes=3, coherence=1.5)
    # the predictor's scattered errors outnumber each outcome more than four to one: coherent
    # clusters there are, but all under min_share of the errors' cluster, and the fit says so
    # (it used to say that no cluster was coherent, beside "the best is 1.000")
    noisy, errs = real.clone(), (outcome < 0).nonzero().flatten()
    cells = torch.randint(0, 4 * 5, (len(errs), 2), generator=gen)
    for i, pair in zip(errs, cells):
        for c in pair.unique():
            noisy[i, :, 2 + c // 5, c % 5] = 1 - noisy[i, :, 2 + c // 5, c % 5]
    sub = (outcome < 0).clone()
    for k in range(3):
        sub[(outcome == k).nonzero().flatten()[:3]] = True
    with pytest.raises(ConfigError, match=r"min_share \(0\.25\) of the largest \(the largest "
                                          r"holds \d+% of the pairs, coherence 0\.\d+"):
        ResidualClusters(_NoChange(), codes=3, clusters=6).fit(cond[sub], noisy[sub], seed=0)
    few = outcome >= 0
    few[few.nonzero()[2:].flatten()] = False
    keep = few | (outcome < 0)
    with pytest.raises(ValueError, match=f"only 2 of {int(keep.sum())} pairs have an outcome"):
        ResidualClusters(_NoChange(), codes=3).fit(cond[keep], real[keep], seed=0)
    # only the scattered errors of a predictor that has not learnt the rule: no cluster is an
    # outcome, and the fit says so (it used to set a NaN prior, which failed deep in sampling)
    falls = outcome < 0
    with pytest.raises(ConfigError, match="found no outcome.*warmup"):
        ResidualClusters(_NoChange(), codes=3).fit(cond[falls], many[falls], seed=0)


def test_clustered_reconstruction_learns_its_reader_and_resumes_exactly(tmp_path):
    cfg = emulator_small("train.iterations=6", "train.checkpoint_every=2",
                         "regularizers=[{name: reconstruction, args: {weight: 1, codes: "
                         "clustered, warmup: 3, fit_pairs: 300}}]")
    full = train(cfg, tmp_path / "full")
    enc = full.tricks.all[0].encoder
    assert enc.fitted and enc.centroids.shape == (7, 2 * 22 * 10)
    assert not any(p.requires_grad for p in enc.predictor.parameters())  # frozen after the fit
    g0 = Game.from_config(cfg).G.state_dict()  # P started as G and learnt on its own
    assert not all(torch.equal(a, b) for a, b in zip(enc.predictor.state_dict().values(),
                                                     g0.values()))
    part = start(cfg, tmp_path / "part")
    part.play(2)  # stopped in the warm-up: P's weights and Adam go through the checkpoint
    resumed = resume(tmp_path / "part")
    renc = resumed.tricks.all[0].encoder
    assert torch.equal(enc.centroids, renc.centroids) and torch.equal(enc.prior, renc.prior)
    assert enc.prior.sum() > 0.99 and full.tricks.all[0].fit_info["pairs"] == 300
    # the latent is drawn with the learnt prior from the fit on, also after a resume
    assert isinstance(full.latent, CategoricalPrior) and torch.allclose(
        full.latent.probs, enc.prior.float().cpu())
    assert torch.equal(resumed.latent.probs, full.latent.probs)
    after = resume(tmp_path / "full")  # resumed past the fit: the prior comes back with it
    assert torch.equal(after.latent.probs, full.latent.probs)
    for a, b in [(full.G, resumed.G), (enc.predictor, renc.predictor)]:
        for (k, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
            assert torch.equal(x, y), k
    assert full.history == resumed.history


def test_the_reader_trains_in_the_runs_formats_and_resumes_exactly(tmp_path):
    """model.channels_last applies to boards (any (N, C, H, W) examples, not only images), and
    codes: clustered's predictor P, a copy of G, trains as G does: channels-last weights, its
    convolutions in bfloat16 under train.precision: bfloat16; such a run resumes bit for bit."""
    cfg = emulator_small("train.iterations=6", "train.checkpoint_every=2",
                         "model.channels_last=true", "train.precision=bfloat16",
                         "regularizers=[{name: reconstruction, args: {weight: 1, codes: "
                         "clustered, warmup: 3, fit_pairs: 300}}]")
    game = Game.from_config(cfg)
    P = game.tricks.all[0].encoder.predictor
    for net in (game.G, P):
        w = net.stem.weight
        assert w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
    seen = []
    hook = P.stem.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    game.play(2)  # in the warm-up: P trains
    hook.remove()
    assert seen and set(seen) == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in P.parameters())
    full = train(cfg, tmp_path / "full")
    part = start(cfg, tmp_path / "part")
    part.play(2)
    resumed = resume(tmp_path / "part")
    assert resumed.G.stem.weight.is_contiguous(memory_format=torch.channels_last)
    renc, enc = resumed.tricks.all[0].encoder, full.tricks.all[0].encoder
    assert enc.fitted and torch.equal(enc.centroids, renc.centroids)
    for a, b in [(full.G, resumed.G), (enc.predictor, renc.predictor)]:
        for (k, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
            assert torch.equal(x, y), k
    assert full.history == resumed.history


def test_after_the_fit_a_batchs_outcomes_are_looked_up_by_its_rows_not_read_again(tmp_path):
    """P is frozen at the fit, so every training pair is read once there (the fit pairs from
    the residuals the fit clustered) and a batch's outcomes are a lookup by its rows
    (StepBatch.index): no forward of P after the fit, the readings those of P's forward, and
    the same readings after a resume."""
    cfg = emulator_small("train.iterations=6", "train.checkpoint_every=3",
                         "regularizers=[{name: reconstruction, args: {weight: 1, codes: "
                         "clustered, warmup: 2, fit_pairs: 300, swap: true, mirror: true, "
                         "shift: 2}}]")
    game = Game.from_config(cfg)
    rec = game.tricks.all[0]
    batches = []
    spy = Penalty()
    spy.name, spy.g_penalty = "spy", lambda b: batches.append(b)
    game.tricks.add(spy)
    game.play(3)  # the fit at iteration 2
    cond, ex = game.inputs.conditioning.values, game.inputs.examples
    assert rec.encoder.fitted and rec.readings.shape == (len(ex),)
    fresh = rec.encoder.readings(cond, ex)  # P's forward over every pair, in chunks
    assert (rec.readings == fresh).float().mean() >= 0.99  # (chunks differ: float rounding)
    b = batches[-1]  # the G phase's batch carries its rows of the training set
    assert torch.equal(b.real, ex.index_select(0, b.index))
    assert torch.equal(b.fake_cond, cond.index_select(0, b.index))
    calls = []
    hook = rec.encoder.predictor.register_forward_hook(lambda m, i, o: calls.append(len(o)))
    game.play(2)
    hook.remove()
    assert calls == []  # looked up, not read
    outcome, miss, read = rec._outcomes(b, also=torch.arange(len(b.index)) < 3)
    assert torch.equal(read, miss | (torch.arange(len(b.index)) < 3))  # missed or moved
    assert torch.equal(outcome[read], rec.readings[b.index][read]) and (outcome[~read] == -1).all()
    part = start(cfg, tmp_path / "part")
    part.play(4)
    resumed = resume(tmp_path / "part")  # from iteration 3, past the fit
    assert torch.equal(resumed.tricks.all[0].readings, part.tricks.all[0].readings)


def test_settle_ends_the_warm_up_once_the_predictor_has_settled_and_resumes_exactly(tmp_path):
    cfg = emulator_small("train.iterations=12", "train.checkpoint_every=1",
                         "regularizers=[{name: reconstruction, args: {weight: 1, codes: "
                         "clustered, warmup: 2, fit_pairs: 300, settle: 0.3, settle_every: 2, "
                         "warmup_max: 8}}]")
    full = train(cfg, tmp_path / "full")
    info = full.tricks.all[0].fit_info
    its, counts = [c[0] for c in info["counts"]], [c[1] for c in info["counts"]]
    assert its == list(range(2, info["warmup"] + 1, 2))[:len(its)] and len(its) >= 1
    for last, now in zip(counts, counts[1:-1]):  # every count before the end moved by > 30%
        assert abs(now - last) > 0.3 * last
    if info["warmup"] < 8:  # ended by the rule: the last count moved by at most 30%
        assert its[-1] == info["warmup"] and len(counts) >= 2
        assert abs(counts[-1] - counts[-2]) <= 0.3 * counts[-2]
    else:  # or by warmup_max, with no check at it
        assert its[-1] < 8
    assert full.tricks.all[0].encoder.fitted
    part = start(cfg, tmp_path / "part")
    part.play(3)  # stopped between two checks: the counts go through the checkpoint
    resumed = resume(tmp_path / "part")
    assert resumed.tricks.all[0].fit_info == info
    assert torch.equal(resumed.tricks.all[0].encoder.centroids,
                       full.tricks.all[0].encoder.centroids)
    assert full.history == resumed.history
    with pytest.raises(ValueError, match="settle ends codes: clustered"):
        Game.from_config(emulator_small(
            "regularizers=[{name: reconstruction, args: {codes: encoded, settle: 0.1}}]"))
    with pytest.raises(ValueError, match="warmup_max >= warmup"):
        Game.from_config(emulator_small("regularizers=[{name: reconstruction, args: {codes: "
                                        "clustered, settle: 0.1, warmup_max: 10}}]"))


def test_settle_waits_while_the_count_rises():
    """A count that rose is P getting worse (a spike in its training), not P settled: the fit
    waits for two counts that agree within the share."""
    game = Game.from_config(emulator_small(
        "regularizers=[{name: reconstruction, args: {weight: 1, codes: clustered, warmup: 2, "
        "settle: 0.02, settle_every: 1, warmup_max: 50}}]"))
    rec = game.tricks.all[0]
    script = iter([207, 271, 300, 296, 160])
    rec._fit_pairs = lambda: (None, None)
    rec.encoder.residuals = lambda c, e: None
    rec.encoder.count_unpredictable = lambda res: next(script)
    ended = [it for it in range(2, 7) if rec._warm(it)]
    assert ended[0] == 5  # 207 -> 271 (+31%) and 271 -> 300 (+11%) go on; 300 -> 296 ends it
    assert [c for _, c in rec.counts][:4] == [207, 271, 300, 296]


class _HedgingOracle(nn.Module):
    """A predictor that knows the recorded falls (mirrored ones too) and, on a board a spawn
    follows, hedges as a cross-entropy-trained predictor does: each spawn cell filled with the
    share of pieces that cover it."""

    def __init__(self, pairs):
        super().__init__()
        self.table = {p[0].tobytes(): p[1] for p in pairs.astype(np.int64)}
        self.blur = torch.as_tensor(SPAWN_MASKS.astype(np.float32).mean(0))

    def forward(self, z, x):
        out = []
        for b in to_boards(x).numpy().astype(np.int64):
            key, flipped = b.tobytes(), False
            if key not in self.table:
                key, flipped = b[:, ::-1].copy().tobytes(), True
            if key not in self.table:  # a board nothing follows (a game's last): no change
                out.append(one_hot(b[None])[0])
                continue
            truth = self.table[key][:, ::-1] if flipped else self.table[key]
            p = one_hot(np.ascontiguousarray(truth)[None])[0]
            if not b[0].any() and truth[0].any():  # a spawn follows: hedge over the pieces
                filled = torch.maximum(torch.as_tensor(b[:3]).float(), self.blur)
                p = one_hot(b[None])[0]
                p[1, :3], p[0, :3] = filled, 1 - filled
            out.append(p)
        return torch.stack(out)


def test_swap_mirror_and_shift_write_the_games_outcomes_into_altered_pairs():
    from ganlab.tetris.metrics import legal_fall
    from ganlab.tetris.task import spawned_piece
    pairs = record_pairs(900, np.random.default_rng(11))
    _, idx = np.unique(pairs[:, 0].reshape(len(pairs), -1), axis=0, return_index=True)
    pairs = pairs[np.sort(idx)]  # one truth per board t for the lookup
    cond, real = one_hot(pairs[:, 0]), one_hot(pairs[:, 1])
    game = Game.from_config(emulator_small(
        "regularizers=[{name: reconstruction, args: {weight: 1, codes: clustered, swap: true, "
        "mirror: true, shift: 2}}]"))
    rec = game.tricks.all[0]
    rec.encoder.predictor = _HedgingOracle(pairs)
    rec.encoder.fit(cond, real, seed=0)
    outcome = rec.encoder(cond, real)
    piece = spawned_piece(cond, real)
    assert ((outcome >= 0) == (piece >= 0)).all()  # the random pairs are the spawns
    of_code = {int(c): int(p) for c, p in zip(outcome[piece >= 0], piece[piece >= 0])}
    assert sorted(of_code.values()) == list(range(7))  # one code per piece
    seen = []

    def generate(z, c):
        seen.append((z, c))
        return torch.full((len(z),) + tuple(real.shape[1:]), 0.5)

    game.step.generate = generate
    targets = []
    per = rec._per_example
    rec._per_example = lambda p, y: targets.append(y) or per(p, y)
    sel = torch.cat([(piece >= 0).nonzero().flatten()[:40], (piece < 0).nonzero().flatten()[:40]])
    # G's fake is the truth on every pair, so _outcomes reads none of them (-1, unread): the
    # moved ones must still be read, or a spawn moved whole would move its piece too
    batch = StepBatch(real[sel], real[sel].clone(), None, None, None, 0, cond[sel], cond[sel])
    unread, miss, read = rec._outcomes(batch)
    assert (unread == -1).all() and not read.any() and not miss.any()
    moves = rec._moves(batch.fake_cond, batch.real)
    outcome, miss, read = rec._outcomes(batch, also=moves[2])  # the moved ones are read
    assert not miss.any() and torch.equal(read, moves[2])
    idx, z, c, y = rec._augmented_part(batch, outcome, moves)
    assert len(idx) == len(c) == len(y) and 40 < len(c) <= 80  # altered pairs only
    assert len(rec._reconstruct([(idx, z, c, y)])[0]) == len(c)
    ((gz, gc),), (gy,) = seen, targets  # one forward of G over them, against their truths
    assert torch.equal(gz, z) and torch.equal(gc, c) and torch.equal(gy, y)
    codes, spawn = z.argmax(1), spawned_piece(c, y)

    def moved(b, flip, s):  # the board b (rows, cols) mirrored, then s columns over
        b = b[:, ::-1] if flip else b
        out = np.zeros_like(b)
        if s >= 0:
            out[:, s:] = b[:, :b.shape[1] - s]
        else:
            out[:, :s] = b[:, -s:]
        return out

    kinds = set()
    for i in range(len(c)):
        xb, yb = to_boards(c[i:i + 1])[0].numpy(), to_boards(y[i:i + 1])[0].numpy()
        found = {(j, f, s) for j in sel.tolist() for f in (0, 1) for s in range(-2, 3)
                 if np.array_equal(moved(pairs[j, 0], f, s), xb)
                 and moved(pairs[j, 0], f, s).sum() == pairs[j, 0].sum()}
        assert found, i  # every altered board t is a recorded one, mirrored and shifted
        if len(found) == 1:  # (a symmetric board is several at once)
            kinds.add(next(iter(found))[1:])
        if piece[next(iter(found))[0]] >= 0:  # a spawn: the drawn code's piece, where it
            assert spawn[i] == of_code[int(codes[i])], i  # spawns, on the moved board
        else:  # a fall: moved whole, still a legal fall
            assert any(np.array_equal(yb, moved(pairs[j, 1], f, s)) for j, f, s in found)
            assert legal_fall(xb, yb)
    assert {(1, 0), (0, 1), (0, -2), (1, 2)} <= kinds  # mirrors and shifts both ways
    # a piece that spawned over a locked cell in row 1 covers it (the spec's ruling): swapping
    # the piece for another must keep the locked cell, which board t holds
    code_of = {p: c for c, p in of_code.items()}
    T, I = PIECE_NAMES.index("T"), PIECE_NAMES.index("I")
    x = np.zeros((1, 22, 10), np.int64)
    x[0, 1:, 4] = 1  # a column of locked cells up to row 1, under T's (1, 4)
    mask = lambda k: np.pad(SPAWN_MASKS[k], ((0, 19), (0, 0))).astype(np.int64)  # noqa: E731
    y = x | mask(T)
    was, new = torch.tensor([code_of[T]]), torch.tensor([code_of[I]])
    swapped = to_boards(rec.encoder.with_outcome(one_hot(y), was, new, cond=one_hot(x)))
    assert np.array_equal(swapped[0].numpy(), x[0] | mask(I))
    blind = to_boards(rec.encoder.with_outcome(one_hot(y), was, new))  # without board t
    assert blind[0, 1, 4] == 0  # the locked cell went with the piece
    with pytest.raises(ValueError, match="need codes: clustered"):
        Game.from_config(emulator_small(
            "regularizers=[{name: reconstruction, args: {codes: encoded, swap: true}}]"))


def test_reconstruct_runs_g_once_over_all_parts_and_splits_the_losses_back():
    """The reconstruction's parts (random pairs under their codes, altered copies, linked
    pairs) go through G in one forward; each part gets its own per-example losses back, the
    same as from a forward of its own."""
    game = Game.from_config(emulator_small(
        "regularizers=[{name: reconstruction, args: {weight: 1, codes: clustered}}]"))
    rec = game.tricks.all[0]
    pairs = record_pairs(9, np.random.default_rng(3))
    cond, real = one_hot(pairs[:, 0]), one_hot(pairs[:, 1])
    z = game.sample_latent(9, generator=torch.Generator().manual_seed(0))
    calls = []
    gen = game.step.generate
    game.step.generate = lambda zz, cc: calls.append(len(zz)) or gen(zz, cc)
    parts = [(torch.arange(3), z[:3], cond[:3], real[:3]), (torch.arange(0), z[:0], cond[:0],
             real[:0]), (torch.arange(6), z[3:], cond[3:], real[3:])]
    with torch.no_grad():
        losses = rec._reconstruct(parts)
        alone = [rec._per_example(gen(p[1], p[2]), p[3]) for p in (parts[0], parts[2])]
    assert calls == [9] and [len(v) for v in losses] == [3, 0, 6]
    assert torch.allclose(losses[0], alone[0], atol=1e-5)
    assert torch.allclose(losses[2], alone[1], atol=1e-5)


def test_swap_mirror_and_shift_resume_exactly(tmp_path):
    cfg = emulator_small("train.iterations=6", "train.checkpoint_every=4",
                         "regularizers=[{name: reconstruction, args: {weight: 1, codes: "
                         "clustered, warmup: 2, fit_pairs: 300, swap: true, mirror: true, "
                         "shift: 2}}]")
    full = train(cfg, tmp_path / "full")
    part = start(cfg, tmp_path / "part")
    part.play(4)  # past the fit: the augmentation's draws go through the checkpoint
    resumed = resume(tmp_path / "part")  # trains on to the end
    assert resumed.iteration == 6
    for (k, a), (_, b) in zip(full.G.state_dict().items(), resumed.G.state_dict().items()):
        assert torch.equal(a, b), k
    assert full.history == resumed.history


def test_links_find_the_transitions_that_the_original_layout_leaves_out():
    """Pairs (0,1), (2,3), ... of each game leave out (1,2), (3,4), ...: the fitted reader
    links each pair's board t+1 to the pair whose board t follows it, and reads the new pair
    (a fall: determined; a spawn: the code of its piece)."""
    from ganlab.tetris.recordings import game_pairs
    from ganlab.tetris.rules import TetrisEngine
    from ganlab.tetris.task import spawned_piece
    rng = np.random.default_rng(5)
    games = [TetrisEngine(rng=rng).play() for _ in range(14)]
    pairs = np.concatenate([game_pairs(f) for f in games]).astype(np.int64)
    every = np.concatenate([game_pairs(f, every_frame=True) for f in games]).astype(np.int64)
    cond, real = one_hot(pairs[:, 0]), one_hot(pairs[:, 1])
    enc = ResidualClusters(_HedgingOracle(every), codes=7)
    with pytest.raises(ValueError, match="fitted reader"):
        enc.links(cond, real)
    enc.fit(cond, real, seed=0)
    i, j, outcome = enc.links(cond, real)
    transitions = {(a.tobytes(), b.tobytes()) for a, b in every}
    left_out = {(f[2 * m + 1].tobytes(), f[2 * m + 2].tobytes()) for f in
                (g.astype(np.int64) for g in games) for m in range(len(game_pairs(f)) - 1)}
    assert len(i) == sum(len(game_pairs(f)) - 1 for f in games)  # all but each game's last
    found = {(pairs[a, 1].tobytes(), pairs[b, 0].tobytes()) for a, b in zip(i, j)}
    assert found <= transitions  # every link a transition of the game ...
    # ... nearly all of them the one the recording left out (a board several games passed
    # through, such as one piece on the floor, may be linked to another game's successor)
    assert len(found & left_out) > 0.9 * len(left_out)
    piece = spawned_piece(one_hot(pairs[i.numpy(), 1]), one_hot(pairs[j.numpy(), 0]))
    assert ((outcome >= 0) == (piece >= 0)).all() and (piece >= 0).sum() > 20
    code_of = {}
    for c, k in zip(outcome[piece >= 0].tolist(), piece[piece >= 0].tolist()):
        assert code_of.setdefault(k, c) == c  # each piece read as one code
    assert len(set(code_of.values())) == len(code_of)


def test_link_trains_on_the_linked_pairs_and_resumes_exactly(tmp_path):
    cfg = emulator_small("train.iterations=6", "train.checkpoint_every=4",
                         "regularizers=[{name: reconstruction, args: {weight: 1, codes: "
                         "clustered, warmup: 2, fit_pairs: 300, swap: true, link: 8}}]")
    full = train(cfg, tmp_path / "full")
    rec = full.tricks.all[0]
    links = rec.fit_info["links"]
    assert links["pairs"] == links["drawn from"] == len(rec.links[0]) > 0
    assert links["random"] >= 0
    part = start(cfg, tmp_path / "part")
    part.play(4)  # past the fit: the links and the draws go through the checkpoint
    resumed = resume(tmp_path / "part")
    assert all(torch.equal(a, b) for a, b in zip(resumed.tricks.all[0].links, rec.links))
    for (k, a), (_, b) in zip(full.G.state_dict().items(), resumed.G.state_dict().items()):
        assert torch.equal(a, b), k
    assert full.history == resumed.history
    off = train(emulator_small("train.iterations=6", "regularizers=[{name: reconstruction, "
                               "args: {weight: 1, codes: clustered, warmup: 2, fit_pairs: 300, "
                               "swap: true}}]"), tmp_path / "off")
    assert off.history["g_loss"][:2] == full.history["g_loss"][:2]  # the same before the fit
    assert off.history["g_loss"][3:] != full.history["g_loss"][3:]  # the linked pairs count
    with pytest.raises(ValueError, match="link is a number of linked pairs"):
        Game.from_config(emulator_small(
            "regularizers=[{name: reconstruction, args: {codes: encoded, link: 8}}]"))


def test_link_random_draws_only_the_links_to_a_random_outcome(tmp_path):
    """``link_random`` keeps the links whose new pair the reader reads as an outcome (the
    spawns), the ones no pair of the batch can stand for, and they go through a resume."""
    args = ("{weight: 1, codes: clustered, warmup: 30, fit_pairs: 300, swap: true, link: 8, "
            "link_random: true}")
    reg = f"regularizers=[{{name: reconstruction, args: {args}}}]"
    cfg = emulator_small("train.iterations=34", "train.checkpoint_every=32", reg)
    # a reader that knows the falls finds links of both kinds; the fit keeps the spawns'
    # (every transition recorded, so that the oracle knows each fall)
    every = emulator_small("data.args={record: 400, every_frame: true}", reg)
    oracle = Game.from_config(every).tricks.all[0]
    x, y = oracle.ctx.conditioning.values, oracle.ctx.examples
    oracle.encoder.predictor = _HedgingOracle(np.stack([to_boards(x), to_boards(y)], 1))
    oracle._fit(30)
    i, j, outcome = oracle.encoder.links(x, y)  # every link
    keep = outcome >= 0
    assert 0 < keep.sum() < len(i)  # falls and spawns
    links = oracle.fit_info["links"]
    assert (links["pairs"], links["random"]) == (len(i), int(keep.sum()))
    assert links["drawn from"] == len(oracle.links[0]) == links["random"]
    assert all(torch.equal(a, b) for a, b in zip(oracle.links, (i[keep], j[keep], outcome[keep])))
    # and through training, the kept links go through a resume
    full = train(cfg, tmp_path / "full")
    rec = full.tricks.all[0]
    assert (rec.links[2] >= 0).all() and len(rec.links[0]) == rec.fit_info["links"]["random"]
    part = start(cfg, tmp_path / "part")
    part.play(32)
    resumed = resume(tmp_path / "part")
    assert all(torch.equal(a, b) for a, b in zip(resumed.tricks.all[0].links, rec.links))
    assert full.history == resumed.history
    spare = train(emulator_small("train.iterations=32", "regularizers=[{name: reconstruction, "
                                 "args: {weight: 1, codes: clustered, warmup: 30, fit_pairs: "
                                 "300, clusters: 14}}]"), tmp_path / "spare")
    info = spare.tricks.all[0].fit_info
    assert len(info["code"]) == 14 and spare.tricks.all[0].encoder.prior.shape == (7,)
    assert set(info["code"]) - {-1} == set(range(info["codes used"]))  # one code per outcome
    for bad, match in (("codes: clustered, clusters: 3", "at least latent.dim"),
                       ("codes: encoded, clusters: 14", "clusters is the k-means clusters")):
        with pytest.raises(ValueError, match=match):
            Game.from_config(emulator_small(
                f"regularizers=[{{name: reconstruction, args: {{{bad}}}}}]"))
    with pytest.raises(ValueError, match="link_random keeps only the random links"):
        Game.from_config(emulator_small(
            "regularizers=[{name: reconstruction, args: {codes: clustered, link_random: true}}]"))
