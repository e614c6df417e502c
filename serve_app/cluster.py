"""What the app reads from the Ray cluster it runs on."""

from __future__ import annotations

import logging

from serve_app.metrics import merge_exposition

log = logging.getLogger(f"ray.serve.{__name__}")  # into the replica logs


def cluster_metrics() -> str:
    """Every alive node's Ray metrics agent, merged (the app's replicas may be on any node)."""
    import httpx
    import ray

    texts = []
    for node in ray.nodes():
        if node.get("Alive") and node.get("MetricsExportPort"):
            url = f"http://{node['NodeManagerAddress']}:{node['MetricsExportPort']}/metrics"
            try:
                texts.append(httpx.get(url, timeout=2.0).text)
            except httpx.HTTPError as err:
                log.warning("metrics of node %s unreachable: %s", node["NodeManagerAddress"], err)
    return merge_exposition(texts)
