import json
import math

import numpy as np
import pytest
import torch

from molvae.checkpoints import load_checkpoint
from molvae.images import experiment
from molvae.images.datasets import ImageSet, load_image_source
from molvae.images.experiment import (
    held_out_images,
    image_config,
    split_images,
    train_image_model,
    training_data,
)
from molvae.images.idx import write_idx
from molvae.models import load_model
from molvae.training import TrainConfig

TINY = {"latent_dim": 2, "hidden_dims": (16,)}


def _id_images(n, start=0, n_classes=2):
    """Images whose pixels (0, 0) and (0, 1) encode a unique id; labels cycle over classes."""
    ids = np.arange(start, start + n)
    images = np.zeros((n, 28, 28), dtype=np.uint8)
    images[:, 0, 0], images[:, 0, 1] = ids // 256, ids % 256
    labels = (ids % n_classes).astype(np.int64)
    return ImageSet(images, labels, tuple(str(c) for c in range(n_classes)))


def _ids(images):
    return images.images[:, 0, 0].astype(int) * 256 + images.images[:, 0, 1]


def _train_config(**kwargs):
    return TrainConfig(**{"epochs": 1, "progress": False, "device": "cpu", **kwargs})


# split_images


def test_split_with_a_test_split_keeps_it_and_carves_validation_from_train():
    train, test = _id_images(100), _id_images(30, start=1000)

    splits = split_images({"train": train, "test": test}, val_fraction=0.2, test_fraction=0.5, seed=0)

    assert (len(splits.train), len(splits.val), len(splits.test)) == (80, 20, 30)
    np.testing.assert_array_equal(splits.test.images, test.images)
    assert sorted([*_ids(splits.train), *_ids(splits.val)]) == list(range(100))


def test_split_without_a_test_split_carves_test_then_validation():
    only = _id_images(100)

    splits = split_images({"train": only}, val_fraction=0.1, test_fraction=0.2, seed=0)

    assert (len(splits.train), len(splits.val), len(splits.test)) == (72, 8, 20)


def test_split_parts_are_disjoint_and_cover_every_image():
    splits = split_images({"train": _id_images(300)}, val_fraction=0.25, test_fraction=0.1, seed=3)
    parts = [set(_ids(part)) for part in (splits.train, splits.val, splits.test)]

    assert sum(len(p) for p in parts) == 300
    assert set().union(*parts) == set(range(300))
    # Labels travel with their images.
    for part in (splits.train, splits.val, splits.test):
        np.testing.assert_array_equal(part.labels, _ids(part) % 2)


def test_split_is_deterministic_for_a_seed_and_varies_with_it():
    sets = {"train": _id_images(200)}

    first = split_images(sets, 0.1, 0.1, seed=5)
    again = split_images(sets, 0.1, 0.1, seed=5)
    other = split_images(sets, 0.1, 0.1, seed=6)

    for a, b in ((first.train, again.train), (first.val, again.val), (first.test, again.test)):
        np.testing.assert_array_equal(a.images, b.images)
        np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(_ids(first.test), _ids(other.test))


def test_split_is_a_shuffle_not_a_slice():
    splits = split_images({"train": _id_images(200)}, 0.1, 0.1, seed=0)

    assert not np.array_equal(np.sort(_ids(splits.test)), np.arange(20))


# image_config


def test_cvae_config_conditions_on_every_class():
    config = image_config("cvae", ["a", "b", "c"], **TINY)

    assert config.kind == "cvae"
    assert config.condition_dim == 3
    assert config.input_dim == 784
    assert (config.latent_dim, config.hidden_dims) == (2, (16,))


def test_vae_config_is_unconditional_even_with_class_names():
    assert image_config("vae", ["a", "b"]).condition_dim == 0


@pytest.mark.parametrize(("kind", "beta", "expected"),
                         [("beta-vae", None, 4.0), ("vae", None, 1.0), ("cvae", None, 1.0),
                          ("beta-vae", 2.5, 2.5), ("vae", 0.5, 0.5)])
def test_beta_defaults(kind, beta, expected):
    config = image_config(kind, ["a", "b"], beta=beta)

    assert config.objective.beta == expected
    assert config.objective.likelihood == "bernoulli"


def test_config_metadata_records_shape_classes_and_split():
    split = {"seed": 3, "val_fraction": 0.2, "test_fraction": 0.1, "exclude_class": None}

    config = image_config("vae", ("x", "y"), split=split)

    assert config.metadata["domain"] == "image"
    assert config.metadata["image_shape"] == [28, 28]
    assert config.metadata["class_names"] == ["x", "y"]
    assert config.metadata["split"] == split
    assert image_config("vae", ()).metadata["split"] == {}
    # The metadata survives a JSON round trip (it is saved in config.json).
    assert json.loads(json.dumps(config.to_dict()))["metadata"] == config.metadata


def test_cvae_config_without_class_names_is_an_error():
    with pytest.raises(ValueError, match="cvae needs class names"):
        image_config("cvae", [])


# training_data


def test_training_data_stores_uint8_and_batches_floats_in_unit_range():
    images = ImageSet(np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8))
    data = training_data(images, image_config("vae", (), **TINY))

    x, c = data.batch(torch.arange(5))

    assert data.inputs.dtype == torch.uint8
    assert data.inputs.shape == (5, 784)
    assert data.conditions is None and c is None
    assert x.dtype == torch.float32
    assert x.shape == (5, 784)
    assert x.min() >= 0.0 and x.max() <= 1.0
    np.testing.assert_allclose(x.numpy(), images.images.reshape(5, -1) / 255.0, rtol=0, atol=1e-6)
    # Converting a batch leaves the stored pixels alone.
    np.testing.assert_array_equal(data.inputs.numpy(), images.images.reshape(5, -1))


def test_training_data_for_cvae_has_one_hot_conditions():
    images = _id_images(6, n_classes=3)
    data = training_data(images, image_config("cvae", images.class_names, **TINY))

    _, c = data.batch(torch.tensor([4, 0]))

    assert data.conditions.shape == (6, 3)
    np.testing.assert_array_equal(data.conditions.argmax(dim=1).numpy(), images.labels)
    np.testing.assert_array_equal(data.conditions.sum(dim=1).numpy(), np.ones(6))
    np.testing.assert_array_equal(c.numpy(), [[0, 1, 0], [1, 0, 0]])


def test_training_data_for_cvae_needs_labels():
    unlabelled = ImageSet(np.zeros((3, 28, 28), dtype=np.uint8))

    with pytest.raises(ValueError, match="labelled"):
        training_data(unlabelled, image_config("cvae", ["a", "b"], **TINY))


# train_image_model and held_out_images


@pytest.fixture
def captured(monkeypatch):
    """Record the image sets train_image_model trains, validates and evaluates on."""
    seen = {"training": [], "test": []}
    real_training_data, real_evaluate = experiment.training_data, experiment.evaluate_images

    def spy_training_data(images, config):
        seen["training"].append(images)
        return real_training_data(images, config)

    def spy_evaluate(model, images, *args, **kwargs):
        seen["test"].append(images)
        return real_evaluate(model, images, *args, **kwargs)

    monkeypatch.setattr(experiment, "training_data", spy_training_data)
    monkeypatch.setattr(experiment, "evaluate_images", spy_evaluate)
    return seen


def test_held_out_images_rebuild_the_exact_test_set_of_a_single_split_source(tmp_path, captured):
    ids = _id_images(120)
    write_idx(tmp_path / "train-images-idx3-ubyte", ids.images)
    write_idx(tmp_path / "train-labels-idx1-ubyte", ids.labels.astype(np.uint8))
    model_dir = tmp_path / "model"

    # Non-default seed and fractions: defaults would give a different test set.
    train_image_model(tmp_path, model_dir, train_config=_train_config(seed=7), val_fraction=0.25,
                      test_fraction=0.3, iwae_k=0, **TINY)
    held_out = held_out_images(load_model(model_dir).config, tmp_path)

    (tested,) = captured["test"]
    assert len(held_out) == 36
    np.testing.assert_array_equal(held_out.images, tested.images)
    np.testing.assert_array_equal(held_out.labels, tested.labels)
    train, val = captured["training"]
    assert not set(_ids(held_out)) & (set(_ids(train)) | set(_ids(val)))


def test_held_out_images_of_a_train_test_source_are_its_test_split(idx_dir_factory, tmp_path):
    source = idx_dir_factory(n_train=40, n_test=12)
    train_image_model(source, tmp_path, train_config=_train_config(), iwae_k=0, **TINY)

    held_out = held_out_images(load_model(tmp_path).config, source)

    np.testing.assert_array_equal(held_out.images, load_image_source(source)["test"].images)


@pytest.fixture(scope="module")
def trained(idx_dir_factory, tmp_path_factory):
    source = idx_dir_factory(n_train=200, n_test=50)
    model_dir = tmp_path_factory.mktemp("model")
    config = _train_config(epochs=2, patience=None)
    metrics = train_image_model(source, model_dir, train_config=config, iwae_k=5, **TINY)
    return source, model_dir, metrics


def test_train_image_model_writes_a_model_folder(trained):
    _, model_dir, metrics = trained

    for name in ("config.json", "weights.pt", "checkpoint.pt", "metrics.json"):
        assert (model_dir / name).is_file(), name
    assert json.loads((model_dir / "metrics.json").read_text()) == pytest.approx(metrics)
    model = load_model(model_dir)
    assert model.config.kind == "vae"
    assert model.config.metadata["class_names"] == ["0", "1"]
    assert model.config.metadata["split"] == {"seed": 0, "val_fraction": 0.1, "test_fraction": 0.1,
                                              "exclude_class": None}
    assert len(load_checkpoint(model_dir).history) == 2


def test_train_image_model_metrics(trained):
    _, _, metrics = trained

    assert (metrics["n_train"], metrics["n_val"], metrics["n_test"]) == (180, 20, 50)
    assert metrics["epochs_run"] == 2
    assert metrics["kind"] == "vae"
    assert metrics["iwae_k"] == 5
    for key in ("test_neg_elbo_nats", "test_iwae_nll_nats", "test_recon_nats", "test_kl_nats",
                "final_val_neg_elbo"):
        assert math.isfinite(metrics[key]), key
    assert metrics["test_neg_elbo_nats"] == pytest.approx(
        metrics["test_recon_nats"] + metrics["test_kl_nats"], rel=1e-4)
    # IWAE (k = 5) is a tighter bound than the one-sample ELBO; both are stochastic.
    assert metrics["test_iwae_nll_nats"] <= metrics["test_neg_elbo_nats"] + 5.0
    assert metrics["test_iwae_nll_nats"] > 0  # a Bernoulli NLL of [0, 1] pixels


def test_train_image_model_skips_iwae_when_k_is_zero(idx_dir_factory, tmp_path):
    metrics = train_image_model(idx_dir_factory(n_train=30, n_test=10), tmp_path,
                                train_config=_train_config(), iwae_k=0, **TINY)

    assert "test_iwae_nll_nats" not in metrics
    assert math.isfinite(metrics["test_neg_elbo_nats"])


def test_exclude_class_drops_it_from_training_but_not_from_the_test_set(idx_dir_factory, tmp_path,
                                                                        captured):
    source = idx_dir_factory(n_train=200, n_test=50)

    metrics = train_image_model(source, tmp_path, train_config=_train_config(), exclude_class=1,
                                iwae_k=0, **TINY)

    expected = split_images(load_image_source(source), 0.1, 0.1, seed=0)
    train, val = captured["training"]
    (tested,) = captured["test"]
    assert (train.labels == 0).all() and (val.labels == 0).all()
    assert metrics["n_train"] == int((expected.train.labels != 1).sum()) < len(expected.train)
    assert metrics["n_val"] == int((expected.val.labels != 1).sum())
    assert metrics["n_test"] == 50 and (tested.labels == 1).any()
    assert load_model(tmp_path).config.metadata["split"]["exclude_class"] == 1


def test_exclude_class_needs_labels(idx_dir_factory, tmp_path):
    source = idx_dir_factory(n_train=30, n_test=0, labels=False)

    with pytest.raises(ValueError, match="labelled"):
        train_image_model(source, tmp_path, train_config=_train_config(), exclude_class=0, **TINY)


def test_cvae_on_unlabelled_images_is_an_error(idx_dir_factory, tmp_path):
    source = idx_dir_factory(n_train=30, n_test=0, labels=False)

    with pytest.raises(ValueError, match="cvae"):
        train_image_model(source, tmp_path, kind="cvae", train_config=_train_config(), **TINY)


def test_the_seed_alone_fixes_the_run(idx_dir_factory, tmp_path):
    source = idx_dir_factory(n_train=60, n_test=10)
    runs = []
    for i, noise in enumerate((123, 456)):
        torch.manual_seed(noise)  # whatever the global RNG holds before, the run is the same
        config = TrainConfig(epochs=1, batch_size=16, device="cpu", progress=False, seed=7)
        train_image_model(source, tmp_path / str(i), train_config=config, hidden_dims=(8,), latent_dim=2,
                          iwae_k=0)
        runs.append(load_model(tmp_path / str(i)).state_dict())
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
