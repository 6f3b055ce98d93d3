"""One training epoch of LeNet-5 on Fashion-MNIST: convkit against PyTorch (CPU), in one run.

Usage (from the repository root, with the test extra installed):

    python benchmarks/train_epoch.py [--threads 2] [--repeats 1] [--data-dir DIR] [--out benchmarks/results]

Both libraries train the same network (LeNet-5, ``convkit.models.lenet5``
and its PyTorch twin), from the same initial weights, on the same float32
batches in the same order (batch 128, shuffled, normalised as ``convkit
train`` does), with Adam (lr 2e-3) and the one-cycle schedule stepped every
batch: the default ``convkit train`` recipe. convkit runs through
``convkit.train.fit``, so the figure is the CLI's. Epochs alternate
between the libraries (convkit first, then torch, ``--repeats`` times);
the medians of the epoch times and their ratio convkit/torch are printed
and written, with every sample, each library's test accuracy after its
epochs and the machine (CPU, cores, load, BLAS), to ``OUT/train_epoch.json``.

Threads: numpy's BLAS is limited with threadpoolctl, torch with
``torch.set_num_threads``; the default is ``convkit train``'s (one thread).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import harness
import numpy as np
import torch
from threadpoolctl import threadpool_limits

import convkit
from convkit.cli.train import DEFAULT_THREADS
from convkit.data import DataLoader, load
from convkit.models import lenet5
from convkit.optim import Adam
from convkit.optim.lr_scheduler import OneCycleLR
from convkit.train import evaluate, fit

BATCH, LR = 128, 2e-3


def torch_lenet5(weights: dict[str, np.ndarray]) -> torch.nn.Sequential:
    """LeNet-5 in PyTorch, the layout of ``convkit.models.lenet5``, holding ``weights``."""
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in weights.items()})
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS,
                        help=f"BLAS / torch threads (default: {DEFAULT_THREADS}, as convkit train)")
    parser.add_argument("--repeats", type=int, default=1, help="epochs per library (default: 1)")
    parser.add_argument("--data-dir", type=Path, help="directory of the Fashion-MNIST IDX files")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    if args.threads < 1 or args.repeats < 1:
        parser.error("--threads and --repeats must be positive")

    train_set = load("fashion-mnist", "train", data_dir=args.data_dir)
    test_set = load("fashion-mnist", "test", data_dir=args.data_dir)
    loader = DataLoader(train_set.images, train_set.labels, BATCH, shuffle=True, seed=0,
                        mean=train_set.mean, std=train_set.std)
    test_loader = DataLoader(test_set.images, test_set.labels, 1000, mean=test_set.mean, std=test_set.std)
    epochs = args.repeats
    convkit.manual_seed(0)
    model = lenet5()
    optimizer = Adam(list(model.parameters()), lr=LR)
    scheduler = OneCycleLR(optimizer, max_lr=LR, total_steps=epochs * len(loader), cycle_momentum=False)
    reference = torch_lenet5(model.state_dict())
    torch_optimizer = torch.optim.Adam(reference.parameters(), lr=LR)
    torch_scheduler = torch.optim.lr_scheduler.OneCycleLR(torch_optimizer, max_lr=LR,
                                                          total_steps=epochs * len(loader), cycle_momentum=False)
    torch.set_num_threads(args.threads)

    seconds: dict[str, list[float]] = {"convkit": [], "torch": []}
    with threadpool_limits(limits=args.threads):
        for epoch in range(epochs):
            history = fit(model, loader, epochs=epoch + 1, start_epoch=epoch, optimizer=optimizer,
                          scheduler=scheduler, progress=False)
            seconds["convkit"].append(history[-1]["seconds"])
            seconds["torch"].append(_torch_epoch(reference, loader, epoch, torch_optimizer, torch_scheduler))
            print(f"epoch {epoch + 1}: convkit {seconds['convkit'][-1]:.2f} s, torch {seconds['torch'][-1]:.2f} s",
                  file=sys.stderr)
        convkit_accuracy = evaluate(model, test_loader)[1]
        torch_accuracy = _torch_accuracy(reference, test_loader)
        machine = harness.machine(args.threads)

    medians = {name: float(np.median(times)) for name, times in seconds.items()}
    ratio = medians["convkit"] / medians["torch"]
    print(f"LeNet-5, Fashion-MNIST, one epoch of {len(train_set)} images at batch {BATCH}, Adam, "
          f"{args.threads} thread(s), median of {epochs}:")
    print(f"  convkit {medians['convkit']:7.2f} s   ({len(train_set) / medians['convkit']:.0f} images/s)")
    print(f"  torch   {medians['torch']:7.2f} s   ({len(train_set) / medians['torch']:.0f} images/s)")
    print(f"  ratio convkit/torch {ratio:.2f}")
    print(f"  test accuracy after {epochs} epoch(s): convkit {convkit_accuracy:.4f}, torch {torch_accuracy:.4f}")
    result = {
        "case": "LeNet-5 training epoch, Fashion-MNIST", "batch_size": BATCH, "optimizer": "adam", "lr": LR,
        "schedule": "onecycle", "images": len(train_set), "epochs": epochs,
        "seconds": seconds, "median_seconds": medians, "ratio_convkit_over_torch": ratio,
        "test_accuracy": {"convkit": convkit_accuracy, "torch": torch_accuracy},
        "machine": machine, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    harness.write_json(args.out / "train_epoch.json", result)
    print(f"wrote {args.out / 'train_epoch.json'}")
    return 0


def _torch_epoch(model, loader, epoch, optimizer, scheduler) -> float:
    """Seconds to train ``model`` for one epoch on the batches of ``loader``'s ``epoch``.

    Keeps the running loss and accuracy as ``fit`` does, so both loops do the same work.
    """
    model.train()
    loader.set_epoch(epoch)
    loss_sum, correct = 0.0, 0
    start = time.perf_counter()
    for x, y in loader:
        target = torch.from_numpy(y)
        logits = model(torch.from_numpy(x))
        loss = torch.nn.functional.cross_entropy(logits, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        loss_sum += loss.item() * len(y)
        correct += int((logits.detach().argmax(1) == target).sum())
    return time.perf_counter() - start


def _torch_accuracy(model, loader) -> float:
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            correct += int((model(torch.from_numpy(x)).argmax(1).numpy() == y).sum())
            total += len(y)
    return correct / total


if __name__ == "__main__":
    sys.exit(main())
