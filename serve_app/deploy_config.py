"""conf/serve.yaml as deployed onto a cluster whose proxy must be reached from outside its own
host (`python -m serve_app.deploy_config --host 0.0.0.0 > serve.cluster.yaml`).

The file stays the one source of truth: only `http_options.host` differs, because a local run
must listen on 127.0.0.1 while the KubeRay head is reached through its Kubernetes Service. A
config file that names no host would mean all interfaces, so conf/serve.yaml names 127.0.0.1.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import yaml

from soccerpredict.config import PROJECT_ROOT


def cluster_config(config: dict[str, Any], host: str) -> dict[str, Any]:
    """The same Serve config with the proxy listening on `host`."""
    out = copy.deepcopy(config)
    out.setdefault("http_options", {})["host"] = host
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=PROJECT_ROOT / "conf/serve.yaml")
    parser.add_argument("--host", required=True, help="where the proxy listens, e.g. 0.0.0.0")
    args = parser.parse_args(argv)
    config = yaml.safe_load(args.config.read_text())
    yaml.safe_dump(cluster_config(config, args.host), sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main()
