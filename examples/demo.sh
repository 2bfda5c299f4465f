#!/usr/bin/env bash
# Install trackpose (into ~/.cache/trackpose-venv, or $TRACKPOSE_VENV) and run the main job on the built-in model
# and data the demo makes: segmentation + evaluation + one TrackMate-style bridge job. Outputs in ./trackpose-demo
# (or the folder given as the first argument).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="$("$root/.ci/setup-env")"
exec "$python" "$root/examples/demo.py" "${1:-trackpose-demo}"
