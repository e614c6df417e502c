"""The MLflow face of a `Predictor`: a pyfunc model whose artifacts are the predictor's files."""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc

from soccerpredict.models.predictor import Predictor


class OutcomeModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """Loads the booster, calibrator and contract saved by `Predictor.save`."""

    def load_context(self, context: Any) -> None:
        self.predictor = Predictor.load(context.artifacts["predictor"])

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        return self.predictor.predict_frame(model_input)
