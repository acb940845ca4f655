"""Data-parallel training for real: 2 processes under torchrun with the gloo backend on CPU."""
import os
import subprocess
import sys
from pathlib import Path

import torch

from ganlab import load_config
from ganlab.run import train

SCRIPT = Path(__file__).parent / "scripts" / "ddp_run.py"
# no batch norm: then the maths says 2 ranks x batch 16 == 1 process x batch 32
SETS = ["model.generator.args={hidden: 32, layers: 2, norm: none}",
        "model.discriminator.args={hidden: 32, layers: 2}", "data.args={n: 512}",
        "data.batch_size=16", "train.log_every=5", "train.checkpoint_every=5",
        "train.sample_every=100", "train.progress=false", "train.threads=1",
        "optim.g.decay=none", "optim.d.decay=none",
        "train.max_seconds=100000"]  # never reached, but rank 0's time check is broadcast


def torchrun(out, iterations, stop, mode, extra=(), timeout=300):
    env = {**os.environ, "GANLAB_BACKEND": "gloo", "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                        "--nproc_per_node", "2", str(SCRIPT), str(out), str(iterations),
                        str(stop), mode, *SETS, *extra], capture_output=True, text=True,
                       env=env, timeout=timeout)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return [torch.load(f"{out}/rank{k}-{mode}.pt", weights_only=True) for k in (0, 1)]


def test_two_ranks_stay_identical_and_match_one_process_with_the_global_batch(tmp_path):
    r0, r1 = torchrun(tmp_path / "ddp", 10, 10, "start")
    for net in ("G", "D"):
        for k in r0[net]:
            assert torch.equal(r0[net][k], r1[net][k]), k  # gradients synchronised
    single = train(load_config("ring8", SETS + ["data.batch_size=32", "train.iterations=10"]),
                   tmp_path / "single")
    for net, model in (("G", single.G), ("D", single.D)):
        for k, v in model.state_dict().items():
            assert torch.allclose(r0[net][k], v, atol=1e-5, rtol=1e-4), (net, k)
    assert r0["d_loss"] == r1["d_loss"]  # logged losses are the mean over ranks
    assert not (tmp_path / "ddp" / "metrics.jsonl").read_text().count('"iteration": 5,') > 1


def test_distributed_resume_is_exact(tmp_path):
    full = torchrun(tmp_path / "full", 10, 10, "start")
    torchrun(tmp_path / "part", 10, 5, "start")  # stops after iteration 5 (a checkpoint)
    resumed = torchrun(tmp_path / "part", 10, 0, "resume")
    for rank in (0, 1):
        for net in ("G", "D"):
            for k, v in full[rank][net].items():
                assert torch.equal(v, resumed[rank][net][k]), (rank, net, k)


def test_evaluation_between_log_points_keeps_the_ranks_in_step(tmp_path):
    """Evaluation runs on rank 0 only, but the flush before it is a collective: every rank
    must take part, or the ranks' all-reduces pair up wrongly and the run hangs or fails."""
    r0, r1 = torchrun(tmp_path / "ev", 10, 10, "start", extra=["train.eval_every=3"],
                      timeout=120)
    assert r0["d_loss"] == r1["d_loss"] and len(r0["d_loss"]) == 10
    rows = (tmp_path / "ev" / "metrics.jsonl").read_text().count('"kind": "eval"')
    assert rows >= 3  # evaluations at 3, 6, 9 written by rank 0
