#!/usr/bin/env bash
# Install everything, then run the main job: a learner plus a simulated LIMO actor on this machine, trained
# from the bundled single demonstration while a second actor evaluates (blocks of 20 episodes, one policy
# version each); training stops once a version succeeds in all 20; the final evaluation runs the best version on
# 20 fresh episodes. Extra arguments go to `learner`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export MUJOCO_GL=${MUJOCO_GL:-egl} TORCHINDUCTOR_COMPILE_THREADS=1
exec .venv/bin/learner \
  --demo robots/sim/demos/limo_ball_to_goal.npz \
  --local-actor limo_sim \
  --actor-arg=--time-scale --actor-arg=4 \
  --eval-actor --actor-arg=--eval-episodes --actor-arg=20 \
  --algo sigent_sac --set batch_size=128 --set hidden_dims=128,128 --utd 2 \
  --threads 1 --max-minutes 13 --stop-at-success 1.0 --stop-window 20 --final-eval 20 \
  --run-dir runs/demo "$@"
