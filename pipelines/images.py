"""The ``image_vae`` flow: train an image VAE, then its sample, interpolation, inpainting and
anomaly grids, tracked as one MLflow run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from pipelines import tracking
from pipelines.config import ImageRunConfig, load_config


@task(name="train-images")
def train_images_task(config: ImageRunConfig, model_dir: str, run_id: str) -> dict[str, Any]:
    from molvae.images.experiment import train_image_model
    from molvae.training import TrainConfig

    train_config = TrainConfig(
        epochs=config.epochs,
        batch_size=config.batch_size,
        device=config.device,
        precision=config.precision,
        seed=config.seed,
        progress=False,
    )
    metrics = train_image_model(
        config.source,
        model_dir,
        kind=config.kind,
        train_config=train_config,
        latent_dim=config.latent_dim,
        beta=config.beta,
        iwae_k=config.iwae_k,
        callbacks=[tracking.EpochLogger(run_id)],
    )
    tracking.log_metrics(run_id, metrics)
    return metrics


@task(name="image-figures")
def image_figures_task(config: ImageRunConfig, model_dir: str, out_dir: str, run_id: str) -> dict[str, Any]:
    """Samples, interpolations, inpainting and the anomaly report, each logged to the run."""
    from molvae.device import resolve_device
    from molvae.images.experiment import held_out_images
    from molvae.images.figures import anomaly_report, inpainting_figure, interpolation_figure, sample_figure
    from molvae.models import load_model

    model = load_model(model_dir, resolve_device(config.device))
    images = held_out_images(model.config, config.source)
    out = Path(out_dir)
    reports = {
        "samples": sample_figure(model, out / "samples.png", seed=config.seed),
        "interpolation": interpolation_figure(model, images, out / "interpolation.png", seed=config.seed),
        "inpainting": inpainting_figure(model, images, out / "inpainting.png", seed=config.seed),
        "anomaly": anomaly_report(model, images, out / "anomaly.csv", seed=config.seed),
    }
    for path in sorted(out.iterdir()):
        if path.suffix in {".png", ".csv", ".json"}:
            tracking.log_artifact(run_id, path, "figures")
    inpainting = reports["inpainting"]
    tracking.log_metrics(
        run_id, {key: value for key, value in inpainting.items() if key.startswith("hidden_mse")}
    )
    return reports


@flow(name="image_vae", log_prints=True)
def image_vae(config: ImageRunConfig | None = None, config_path: str | None = None) -> dict[str, Any]:
    """Train on ``config.source`` and write the figure grids; returns the folder and the MLflow run id."""
    config = config or load_config(ImageRunConfig, config_path)
    out = config.out.resolve()
    run_id = tracking.start_run(
        config.experiment, run_name=f"images-{config.kind}", tags={"molvae.flow": "image_vae"}
    )
    try:
        with tracking.system_metrics(run_id):
            tracking.log_params(run_id, config.model_dump(mode="json"))
            metrics = train_images_task(config, str(out / "model"), run_id)
            image_figures_task(config, str(out / "model"), str(out / "figures"), run_id)
    except BaseException:
        tracking.end_run(run_id, failed=True)
        raise
    tracking.end_run(run_id)
    url = tracking.run_url(run_id)
    create_markdown_artifact(
        f"# image_vae\n- test −ELBO {metrics.get('test_neg_elbo_nats', float('nan')):.2f} nats"
        f"\n- figures in `{out / 'figures'}`\n- MLflow run [{run_id}]({url})",
        key="image-summary",
    )
    return {"figures": str(out / "figures"), "run_id": run_id, "run_url": url, "metrics": metrics}
