"""One training epoch on Fashion-MNIST: convkit against PyTorch (CPU), in one run.

Usage (from the repository root, with the test extra installed):

    python benchmarks/train_epoch.py [--model lenet5|convnet] [--threads T] [--torch-threads 1,2]
                                     [--repeats 1] [--data-dir DIR] [--out benchmarks/results]

Both libraries train the same network (``convkit.models.<model>`` and its
PyTorch twin, ``twin.py``), from the same initial weights, on the same
float32 batches in the same order (batch 128, shuffled, normalised as
``convkit train`` does), with Adam (lr 2e-3) and the one-cycle schedule
stepped every batch: the default ``convkit train`` recipe. convkit runs
through ``convkit.train.fit``, so the figure is the CLI's. Each repeat
trains one convkit epoch, then one torch epoch at each of
``--torch-threads``; the medians of the epoch times are printed and
written, with every sample, the ratio of convkit to torch's best thread
count, each library's test accuracy and the machine (CPU, cores, load,
BLAS), to ``OUT/train_epoch-<model>.json``.

Threads: ``convkit.set_num_threads(T)`` (kernels and BLAS; default: what
``convkit train`` picks by itself on this machine), ``torch.set_num_threads``
for torch. No allocator tuning for either.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import harness
import numpy as np
import torch
from twin import twin

import convkit
from convkit.cli.train import fastest_threads
from convkit.data import DataLoader, load
from convkit.models import build
from convkit.optim import Adam
from convkit.optim.lr_scheduler import OneCycleLR
from convkit.train import evaluate, fit

BATCH, LR = 128, 2e-3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=("lenet5", "convnet"), default="lenet5")
    parser.add_argument("--threads", type=int, default=None,
                        help="convkit's threads (default: the count convkit train picks)")
    parser.add_argument("--torch-threads", default="1,2", help="torch thread counts to time (default: 1,2)")
    parser.add_argument("--repeats", type=int, default=1, help="epochs per library (default: 1)")
    parser.add_argument("--data-dir", type=Path, help="directory of the Fashion-MNIST IDX files")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    torch_threads = [int(t) for t in args.torch_threads.split(",")]
    if (args.threads is not None and args.threads < 1) or args.repeats < 1 or min(torch_threads) < 1:
        parser.error("--threads, --torch-threads and --repeats must be positive")

    train_set = load("fashion-mnist", "train", data_dir=args.data_dir)
    test_set = load("fashion-mnist", "test", data_dir=args.data_dir)
    loader = DataLoader(train_set.images, train_set.labels, BATCH, shuffle=True, seed=0,
                        mean=train_set.mean, std=train_set.std)
    test_loader = DataLoader(test_set.images, test_set.labels, 1000, mean=test_set.mean, std=test_set.std)
    epochs = args.repeats
    convkit.manual_seed(0)
    model = build(args.model)
    optimizer = Adam(list(model.parameters()), lr=LR)
    scheduler = OneCycleLR(optimizer, max_lr=LR, total_steps=epochs * len(loader), cycle_momentum=False)
    threads = args.threads or fastest_threads(model, loader)
    references = {}
    for t in torch_threads:
        reference = twin(model)
        opt = torch.optim.Adam(reference.parameters(), lr=LR)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=epochs * len(loader),
                                                    cycle_momentum=False)
        references[t] = (reference, opt, sched)

    seconds: dict[str, list[float]] = {"convkit": []} | {f"torch {t} threads": [] for t in torch_threads}
    for epoch in range(epochs):
        convkit.set_num_threads(threads)
        history = fit(model, loader, epochs=epoch + 1, start_epoch=epoch, optimizer=optimizer,
                      scheduler=scheduler, progress=False)
        seconds["convkit"].append(history[-1]["seconds"])
        for t, (reference, opt, sched) in references.items():
            torch.set_num_threads(t)
            seconds[f"torch {t} threads"].append(_torch_epoch(reference, loader, epoch, opt, sched))
        print(f"epoch {epoch + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in seconds.items()),
              file=sys.stderr)
    convkit_accuracy = evaluate(model, test_loader)[1]
    medians = {name: float(np.median(times)) for name, times in seconds.items()}
    best_torch = min((k for k in medians if k.startswith("torch")), key=medians.get)
    torch_accuracy = _torch_accuracy(references[int(best_torch.split()[1])][0], test_loader)
    machine = harness.machine(threads)
    ratio = medians["convkit"] / medians[best_torch]
    print(f"{args.model}, Fashion-MNIST, one epoch of {len(train_set)} images at batch {BATCH}, Adam, "
          f"median of {epochs}; convkit on {threads} thread(s):")
    for name, value in medians.items():
        print(f"  {name:18s} {value:7.2f} s   ({len(train_set) / value:.0f} images/s)")
    print(f"  ratio convkit / {best_torch} (torch's best) {ratio:.2f}")
    print(f"  test accuracy after {epochs} epoch(s): convkit {convkit_accuracy:.4f}, torch {torch_accuracy:.4f}")
    result = {
        "case": f"{args.model} training epoch, Fashion-MNIST", "model": args.model, "batch_size": BATCH,
        "optimizer": "adam", "lr": LR, "schedule": "onecycle", "images": len(train_set), "epochs": epochs,
        "convkit_threads": threads, "seconds": seconds, "median_seconds": medians, "best_torch": best_torch,
        "ratio_convkit_over_best_torch": ratio,
        "test_accuracy": {"convkit": convkit_accuracy, best_torch: torch_accuracy},
        "machine": machine, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    path = args.out / f"train_epoch-{args.model}.json"
    harness.write_json(path, result)
    print(f"wrote {path}")
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
