#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image. The
# autograder's zip holds setup.sh and run_autograder at its top, and this repository as
# project/ beside them (for instance: git archive --prefix=project/ -o project.zip HEAD,
# then add the two files); Gradescope unpacks it in /autograder/source.
set -euo pipefail
apt-get update
apt-get install -y --no-install-recommends python3 python3-pip
cd /autograder/source/project
# PyTorch's CPU build: the default one from PyPI carries CUDA (gigabytes) the image does not
# need. Then the project itself, at the versions its constraints pin.
python3 -m pip install --index-url https://download.pytorch.org/whl/cpu \
    "torch==$(sed -n 's/^torch==//p' constraints.txt)"
python3 -m pip install --constraint constraints.txt .
