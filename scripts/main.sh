#!/usr/bin/env bash
# The main job on the bundled data: set up, train plant_richness_lr, print the
# statistical summary, export (verified) to runs/plant_richness_lr, and predict a
# few rows through the torch-free inference package.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/linreg train --dataset plant_richness_lr --out runs/plant_richness_lr --overwrite "$@"
.venv/bin/linreg info runs/plant_richness_lr
