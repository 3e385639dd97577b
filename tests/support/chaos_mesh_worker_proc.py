"""A chaos worker in its own process: the Chaos Mesh backend on the real controller's cluster.

Used by the kill tests: `python -m tests.support.chaos_mesh_worker_proc ADDRESS TASK_QUEUE
KUBECONFIG NAMESPACE`. The backend, the workflows and the sweeper's activities are the real
ones; the verification activities are `HealthyProbes` (no ByteBot runs in that cluster), each
check taking a second as a real one does. It prints "ready" once polling.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from activities.faults.activities import FaultActivities
from activities.faults.chaos_mesh.backend import ChaosMeshBackend
from activities.faults.chaos_mesh.client import KubeClient
from activities.faults.chaos_mesh.render import PeerMap, PeerTarget
from activities.faults.chaos_mesh.sweeper import SweeperActivities
from activities.scenario import ScenarioActivities
from tests.support.standins import HealthyProbes
from tests.support.worker_proc import serve

#: Network peers as IPs, as the real-controller fixtures give them (no DNS lookups leave here).
PEERS = PeerMap(temporal=PeerTarget(hosts=["10.96.10.10"]), kafka=PeerTarget(hosts=["10.96.10.20"]))


async def main(address: str, task_queue: str, kubeconfig: str, namespace: str) -> None:
    client = await Client.connect(address, data_converter=pydantic_data_converter)
    kube = KubeClient.from_config(Path(kubeconfig))
    backend = ChaosMeshBackend(
        kube, allowed_namespaces=[namespace], peers=PEERS, poll_s=0.1, recover_wait_s=20
    )
    await serve(
        client,
        task_queue,
        [
            *ScenarioActivities("chaos-mesh", [namespace]).all(),
            *FaultActivities(backend).all(),
            *HealthyProbes(delay_s=1.0).all(),
            *SweeperActivities(kube, client, [namespace]).all(),
        ],
    )


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
