#!/usr/bin/env bash
# `make demo`: a conversation the shipped model never saw, through the DualTalk node over DDS,
# to demo_out/conversation.mp4 and demo_out/report.md. No robot, microphone or GPU needed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
unset ROS_DOMAIN_ID
# shellcheck disable=SC1091
. scripts/env.sh
OUT=demo_out
CLIP=syn_ood_00000
rm -rf "$OUT"
mkdir -p "$OUT"
step() { echo; echo "[demo $(date +%H:%M:%S)] $*"; }
start=$SECONDS

step "1/5 synthesising a conversation with unseen voices (+ a small train pool for baselines)"
dualtalk-synth --out "$OUT/corpus" --clips 12 --test-clips 0 --ood-clips 1 --val-clips 0 --seed 20261122

step "2/5 recording it as a robot would: rosbag2 with audio chunks, partner face, ground truth"
dualtalk-bag record --data "$OUT/corpus" --split ood --clip "$CLIP" --out "$OUT/conversation_bag"

step "3/5 the DualTalk node (shipped model) hears the bag replayed over DDS in real time"
dualtalk-bag eval --bag "$OUT/conversation_bag" --out "$OUT/live" --live --rate 1.0

step "4/5 rendering both faces side by side with both voices"
dualtalk-render --bag "$OUT/conversation_bag" --bag "$OUT/live/output_bag" \
  --out "$OUT/conversation.mp4"

step "5/5 scoring against the ground truth and the baselines"
python -m dualtalk_ros.bag.demo_report --corpus "$OUT/corpus" --split ood --live "$OUT/live" \
  --video "$OUT/conversation.mp4" --out "$OUT/report.md"

step "done in $((SECONDS - start)) s: $OUT/conversation.mp4 and $OUT/report.md"
