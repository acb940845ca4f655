"""Train the MNIST domain classifier used by ganlab's IS/FID/KID and write its weights into the
package (src/ganlab/metrics/weights/mnist_classifier.pt). Needs MNIST (`make mnist`).

Usage: python scripts/train_mnist_classifier.py [--epochs 4] [--seed 0]
"""
import argparse
import time

import torch
import torch.nn.functional as F

from ganlab.checkpoint import atomic_save
from ganlab.data import load_dataset
from ganlab.metrics.classifier import WEIGHTS, MNISTClassifier


def accuracy(model, x, y):
    _, logits = model.embed(x)
    return (logits.argmax(1) == y).float().mean().item()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default=None, help="MNIST location (data.path)")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    train = load_dataset("mnist", args.data, {"split": "train"})
    test = load_dataset("mnist", args.data, {"split": "test"})
    model = MNISTClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    steps = args.epochs * (len(train) // 128)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    t0 = time.time()
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(train))
        for i in range(len(train) // 128):
            idx = perm[i * 128:(i + 1) * 128]
            x, y = train.examples[idx], train.labels[idx]
            shift = torch.randint(-2, 3, (2,))  # small translations
            x = torch.roll(x, shifts=(int(shift[0]), int(shift[1])), dims=(2, 3))
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        print(f"epoch {epoch + 1}: test accuracy {accuracy(model, test.examples, test.labels):.4f} "
              f"({time.time() - t0:.0f} s)", flush=True)
    acc = accuracy(model, test.examples, test.labels)
    atomic_save({"model": model.state_dict(), "test_accuracy": acc, "epochs": args.epochs,
                 "seed": args.seed}, WEIGHTS)
    print(f"test accuracy {acc:.4f}; wrote {WEIGHTS} ({WEIGHTS.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
