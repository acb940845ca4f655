"""Run under torchrun by tests/test_distributed.py: train, then dump this rank's weights."""
import sys

import torch

from ganlab import load_config
from ganlab.run import resume, start

out, iterations, stop, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
sets = sys.argv[5:]
if mode == "start":
    game = start(load_config("ring8", sets + [f"train.iterations={iterations}"]), out)
    game.play(stop)
else:
    game = resume(out)
torch.save({"G": game.G.state_dict(), "D": game.D.state_dict(), "d_loss": game.history["d_loss"]},
           f"{out}/rank{game.rank}-{mode}.pt")
