"""The same model behind a plain FastAPI + uvicorn app: the baseline the Serve app is measured
against (`python -m benchmarks.plain_app --port P`). Same request schema, same feature code,
same registered model; no Ray, no cache, one process."""

from __future__ import annotations

import argparse
from typing import Any

from fastapi import FastAPI, HTTPException

from serve_app.schemas import FixtureIn
from soccerpredict import registry
from soccerpredict.config import PROJECT_ROOT, load_config
from soccerpredict.features.online import FixtureError, TeamState


def create_app(state: TeamState, predictor: Any, version: str) -> FastAPI:
    app = FastAPI(title="plain baseline")

    @app.post("/predict")
    def predict(body: FixtureIn) -> dict[str, Any]:
        fixture = body.fixture()
        try:
            state.check(fixture, max_horizon_days=400)
        except FixtureError as err:
            raise HTTPException(422, err.message) from None
        probs = predictor.predict_proba(state.features([fixture]))[0]
        return {
            "probabilities": dict(zip(("home", "draw", "away"), probs.tolist(), strict=True)),
            "model_version": version,
        }

    return app


def main() -> None:
    import mlflow
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--version", required=True, help="registered model version")
    args = parser.parse_args()
    cfg = load_config(PROJECT_ROOT / "params.yaml", PROJECT_ROOT / "conf/runtime.yaml").rooted(
        PROJECT_ROOT
    )
    mlflow.set_tracking_uri(cfg.runtime.mlflow.tracking_uri)
    predictor = registry.load_predictor(
        registry.tracking_client(cfg), cfg.runtime.mlflow.model_name, args.version
    )
    app = create_app(TeamState.load(cfg.runtime.paths.team_state), predictor, args.version)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
