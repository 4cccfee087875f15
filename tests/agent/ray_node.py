"""A second Ray node on this machine, joined to a running head on loopback; prints its raylet's PID.

``ray start --address 127.0.0.1:PORT`` cannot do this here: the CLI replaces a loopback node
address with the machine's external one (ray-project/ray#59110) and, in single-machine mode (the
only one whose processes listen on 127.0.0.1 alone), refuses to add a node. This joins through the
API the CLI itself calls (and Ray's own ``ray.cluster_utils.Cluster`` uses): a full node with its
own raylet, object store and node ID, on 127.0.0.1. Usage: ``python ray_node.py 127.0.0.1:PORT
CPUS``. The node outlives this script; ``ray stop`` ends it with the head.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # bind 127.0.0.1, not every interface
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from ray._private import ray_constants  # noqa: E402
from ray._private.node import Node  # noqa: E402
from ray._private.parameter import RayParams  # noqa: E402

address, cpus = sys.argv[1], int(sys.argv[2])
node = Node(
    RayParams(gcs_address=address, node_ip_address="127.0.0.1", num_cpus=cpus, include_dashboard=False),
    head=False,
    shutdown_at_exit=False,
    spawn_reaper=False,
)
print(node.all_processes[ray_constants.PROCESS_TYPE_RAYLET][0].process.pid, flush=True)
