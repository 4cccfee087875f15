#!/usr/bin/env bash
# "put the red block in the bowl" through --backend ros (the shipped VLA driving `vla-agent ros
# sim-robot` in another process over DDS) and in the simulator directly, on the same seeds; the
# ROS run is judged by the robot process's own ground truth. Usage: examples/ros/compare.sh [SEEDS]
set -euo pipefail
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_LOCALHOST_ONLY=1 ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-88}
arm="$(dirname "$0")/arm.yaml"; cmd="put the red block in the bowl"; scene="red block, blue bowl"
out=$(mktemp -d)
for s in ${1:-$(seq 100 109)}; do
  vla-agent ros sim-robot --scene "$scene" --seed "$s" --ros-config "$arm" \
    --calibration-out "$out/cal.yaml" --truth-out "$out/truth.json" > "$out/robot.log" 2>&1 &
  robot=$!
  while [ ! -f "$out/cal.yaml" ]; do sleep 0.2; done
  start=$(date +%s%N)
  vla-agent run "$cmd" --backend ros --ros-config "$arm" --calibration "$out/cal.yaml" --scene "$scene" \
    --yes --no-video --json --out "$out/ros-$s" > "$out/ros.json" 2>/dev/null || true
  wall_ms=$(( ($(date +%s%N) - start) / 1000000 ))
  kill -TERM "$robot"; wait "$robot" || true
  vla-agent run "$cmd" --scene "$scene" --seed "$s" --no-video --json --out "$out/sim-$s" > "$out/sim.json" 2>/dev/null || true
  python - "$s" "$wall_ms" "$out" <<'PY'
import json, sys
s, wall, out = sys.argv[1], int(sys.argv[2]) / 1000, sys.argv[3]
ros, truth, sim = (json.load(open(f"{out}/{n}.json")) for n in ("ros", "truth", "sim"))
print(json.dumps({"seed": int(s), "ros": ros["status"], "ros_truth": "in(red block, blue bowl)" in truth["holds"],
                  "ros_moves": ros["arm_moves"], "ros_wall_s": round(wall, 1), "sim": sim["status"], "sim_steps": sim["steps"]}))
PY
  rm -f "$out/cal.yaml" "$out/truth.json"
done
