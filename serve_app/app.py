"""The application `serve run conf/serve.yaml` builds: Ingress (with the Features component
in-process) → Model. The composition root: the settings are read here, once, and every
deployment gets the same `ServeSettings` (serve_app/settings.py).
"""

from __future__ import annotations

from ray.serve import Application

from serve_app.settings import AppArgs, load_settings


def build_app(args: dict[str, object] | AppArgs) -> Application:
    from serve_app.deployments import IngressDeployment, Model

    settings = load_settings(args)
    # mypy keeps the class type through a class decorator; serve.deployment made them Deployments
    model = Model.bind(settings)  # type: ignore[attr-defined]
    return IngressDeployment.bind(model, settings)  # type: ignore[attr-defined]
