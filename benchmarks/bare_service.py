"""The floor for the model service: the same Pipeline behind a bare FastAPI endpoint.

No request model, no data contract, no prediction log, no metrics, no access log: the body's JSON is
parsed, its rows become a DataFrame and the Pipeline's predict_proba scores them. benchmarks.serve
starts it with uvicorn, one worker, as the project's own service is started, and with one OpenMP thread
per prediction, as the service runs them (OMP_NUM_THREADS=1 reaches every thread; no code needed):

    BARE_MODEL=models/model.joblib OMP_NUM_THREADS=1 \
        python -m uvicorn --factory benchmarks.bare_service:create_app --port 8001 --no-access-log
"""

import os
from typing import Any

import joblib
import pandas as pd
from fastapi import FastAPI

MODEL_VARIABLE = "BARE_MODEL"


def create_app() -> FastAPI:
    """The app, built as uvicorn starts it (`--factory`), as the project's service is."""
    pipeline = joblib.load(os.environ[MODEL_VARIABLE])
    features = [str(name) for name in pipeline.feature_names_in_]
    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/predict")
    def predict(body: dict[str, Any]) -> dict[str, list[float]]:  # a dict parameter is the JSON body, unvalidated
        frame = pd.DataFrame.from_records(body["rows"], columns=features)
        return {"probabilities": pipeline.predict_proba(frame)[:, 1].tolist()}

    return app
