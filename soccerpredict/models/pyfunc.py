"""The MLflow face of a `Predictor`: a pyfunc model whose artifacts are the predictor's files."""

from __future__ import annotations

from typing import Any

from mlflow.pyfunc.model import PythonModel

from soccerpredict.models.predictor import Predictor


class OutcomeModel(PythonModel):
    """Loads the booster, calibrator and contract saved by `Predictor.save`."""

    def load_context(self, context: Any) -> None:
        self.predictor = Predictor.load(context.artifacts["predictor"])

    def predict(self, context, model_input, params=None):
        return self.predictor.predict_frame(model_input)
