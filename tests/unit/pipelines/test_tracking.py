import mlflow
import pytest

from pipelines import tracking


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def test_embedded_default_is_sqlite_with_local_artifacts(store):
    assert tracking.tracking_uri() == f"sqlite:///{store / 'mlruns.db'}"
    run_id = tracking.start_run("exp", "r")
    tracking.log_params(run_id, {"hidden": [1024, 512], "lr": 0.001})
    tracking.log_metrics(run_id, {"loss": 1.5, "nan": float("nan"), "name": "x", "flag": True}, step=2)
    (store / "a.txt").write_text("hi")
    tracking.log_artifact(run_id, store / "a.txt", "files")
    tracking.end_run(run_id)
    run = tracking.client().get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"hidden": "[1024, 512]", "lr": "0.001"}
    assert run.data.metrics == {"loss": 1.5}
    assert (store / "mlartifacts").is_dir()
    assert [f.path for f in tracking.client().list_artifacts(run_id, "files")] == ["files/a.txt"]


def test_registering_the_model_leaves_the_run_running_until_the_flow_ends(store):
    run_id = tracking.start_run("exp", "r")
    for folder in ("model", "library"):
        (store / folder).mkdir()
        (store / folder / "file.txt").write_text(folder)
    assert tracking.log_model(run_id, store / "model", store / "library", "m") == "1"
    assert tracking.client().get_run(run_id).info.status == "RUNNING"
    tracking.end_run(run_id)
    assert tracking.client().get_run(run_id).info.status == "FINISHED"


def test_dataset_manifests_are_logged_as_inputs_with_their_digest(store):
    run_id = tracking.start_run("exp", "r")
    manifest = {
        "content_hash": "abc123",
        "counts": {"rows_read": 3, "accepted": 2, "duplicates": 1, "rejected": 0, "reasons": {}},
        "folder": "/d",
    }
    tracking.log_dataset(run_id, manifest, "train", "training")
    inputs = tracking.client().get_run(run_id).inputs.dataset_inputs
    assert [(i.dataset.name, i.dataset.digest) for i in inputs] == [("train", "abc123")]
    assert inputs[0].tags[0].value == "training"


def test_champion_moves_only_to_a_better_recovery(store, tmp_path):
    client = tracking.client()
    client.create_registered_model("m")
    versions = []
    for top1 in (0.5, 0.4, 0.7):
        run_id = tracking.start_run("exp", "r")
        tracking.log_metrics(run_id, {tracking.CHAMPION_METRIC: top1})
        version = client.create_model_version("m", f"runs:/{run_id}/model", run_id=run_id).version
        versions.append((str(version), tracking.promote_if_better("m", str(version), run_id)))
    assert [promoted for _, promoted in versions] == [True, False, True]
    assert str(client.get_model_version_by_alias("m", tracking.CHAMPION).version) == versions[2][0]


def test_run_without_the_metric_is_never_champion(store):
    run_id = tracking.start_run("exp", "r")
    client = tracking.client()
    client.create_registered_model("m")
    version = client.create_model_version("m", f"runs:/{run_id}/model", run_id=run_id).version
    assert not tracking.promote_if_better("m", str(version), run_id)
    with pytest.raises(mlflow.exceptions.MlflowException):
        client.get_model_version_by_alias("m", tracking.CHAMPION)
