import hashlib
import json

import rdkit

from molvae.chem.ingest import INGEST_FORMAT
from molvae.chem.search import LIBRARY_FORMAT_VERSION
from pipelines.molecules import _cached, built_from, ingested_from


def dataset_folder(tmp_path, name, sha256, properties, rdkit_version=rdkit.__version__):
    folder = tmp_path / name
    folder.mkdir()
    identity = {"inputs": [{"name": "train.csv", "sha256": sha256}], "settings": {"properties": properties},
                "ingest_format": INGEST_FORMAT, "rdkit_version": rdkit_version}
    (folder / "molecules.parquet").write_bytes(b"rows")
    files = {"molecules.parquet": hashlib.sha256(b"rows").hexdigest()}
    (folder / "manifest.json").write_text(json.dumps({"identity": identity, "files": files}))
    return folder


def test_a_dataset_folder_is_valid_only_for_the_input_and_properties_that_made_it(tmp_path):
    folder = dataset_folder(tmp_path, "ds", "aaa", "basic")
    assert ingested_from("aaa", "basic")(folder)
    assert not ingested_from("bbb", "basic")(folder)  # another input was ingested into it since
    assert not ingested_from("aaa", "none")(folder)
    assert not ingested_from("aaa", "basic")(tmp_path / "gone")
    older = dataset_folder(tmp_path, "old", "aaa", "basic", rdkit_version="2019.03.1")
    assert not ingested_from("aaa", "basic")(older)  # standardized by another RDKit
    (folder / "molecules.parquet").write_bytes(b"damaged")
    assert not ingested_from("aaa", "basic")(folder)  # a file no longer matches its digest


def test_a_library_folder_is_valid_only_for_the_dataset_it_was_built_from(tmp_path):
    info = {"dataset_content_hash": "h1", "format_version": LIBRARY_FORMAT_VERSION}
    (tmp_path / "library.json").write_text(json.dumps(info))
    assert built_from("h1")(tmp_path) and not built_from("h2")(tmp_path)
    (tmp_path / "library.json").write_text(json.dumps(info | {"format_version": 1}))  # no source ids
    assert not built_from("h1")(tmp_path)
    (tmp_path / "library.json").write_text("{not json")
    assert not built_from("h1")(tmp_path)


class FakeTask:
    """A cached task whose cached result names ``folder``; a refreshed run records itself."""

    def __init__(self, folder):
        self.folder, self.refreshed = folder, []

    def __call__(self, *args):
        return str(self.folder)

    def with_options(self, refresh_cache):
        assert refresh_cache

        def run(*args):
            self.refreshed.append(args)
            return str(self.folder)
        return run


def test_a_stale_cached_result_is_rebuilt_and_a_valid_one_reused(tmp_path):
    folder = dataset_folder(tmp_path, "ds", "bbb", "basic")  # a run with input B replaced A's folder
    task = FakeTask(folder)
    assert _cached(task, ingested_from("aaa", "basic"), "a.csv") == str(folder)
    assert task.refreshed == [("a.csv",)]
    task = FakeTask(folder)
    _cached(task, ingested_from("bbb", "basic"), "b.csv")
    assert task.refreshed == []
