"""Is there a champion to serve? `python -m soccerpredict.ops.champion` prints the answer and
exits 0 (yes, its version), 3 (the registry answers, but no model or no `champion` alias yet:
a first install before the pipeline ran) or 1 (the registry did not answer as it should: an
error worth reading, never hidden as "no champion"). Used by scripts/serve_deploy.sh.
"""

from __future__ import annotations

import sys

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from soccerpredict.registry import CHAMPION

NONE_YET = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}  # no model; no such alias


def champion_status(tracking_uri: str, model_name: str) -> tuple[int, str]:
    try:
        version = MlflowClient(tracking_uri).get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException as err:
        if err.error_code in NONE_YET:
            return 3, f"no champion of {model_name} in the registry yet ({err.error_code})"
        return 1, f"registry error: {err.error_code}: {err.message.splitlines()[0][:300]}"
    except Exception as err:  # noqa: BLE001 - network, auth, anything: say what it was
        return 1, f"registry unreachable: {type(err).__name__}: {str(err).splitlines()[0][:300]}"
    return 0, f"champion of {model_name}: version {version.version}"


def main() -> int:
    from soccerpredict.config import project_config

    conf = project_config().runtime.mlflow
    code, message = champion_status(conf.tracking_uri, conf.model_name)
    print(message, flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
