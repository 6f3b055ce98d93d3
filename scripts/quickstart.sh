#!/usr/bin/env bash
# Set up convkit and run its main job: train LeNet-5 on Fashion-MNIST on the CPU
# and print the test accuracy. Extra arguments go to `convkit train`
# (e.g. `bash scripts/quickstart.sh convnet --epochs 3`).
set -euo pipefail
cd "$(dirname "$0")/.."

# Fashion-MNIST comes from Debian's dataset-fashion-mnist package.
if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    echo "installing Debian's dataset-fashion-mnist package (30 MB)..." >&2
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv   # a second run reuses it
.venv/bin/pip install -q -e '.[plot]'
exec .venv/bin/convkit train "$@"
