import gzip
import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from rdkit import Chem

from molvae.chem import search_backends
from molvae.chem.fingerprints import morgan_packed
from molvae.chem.search import FingerprintLibrary, dataset_source_ids, search_shards

ROOT = Path(__file__).resolve().parents[3]
BUNDLED_LIBRARY = ROOT / "data" / "moses" / "library.csv.gz"
N_BITS = 256


def brute_force(library_bits, queries, k, similarity="soft-tanimoto", exclude=(), threshold=None):
    """The reference: every pair in float64, stable sort by (score desc, index asc)."""
    b = library_bits.astype(np.float64)
    p = queries.astype(np.float64)
    inter = p @ b.T
    size = (p * p).sum(1) if similarity == "soft-tanimoto-sq" else p.sum(1)
    denominator = size[:, None] + b.sum(1)[None, :] - inter
    scores = np.where(denominator > 0, inter / np.where(denominator > 0, denominator, 1), 0.0)
    indices = np.full((len(p), k), -1)
    best = np.full((len(p), k), np.nan)
    for q in range(len(p)):
        allowed = [r for r in np.argsort(-scores[q], kind="stable") if r not in set(exclude)
                   and (threshold is None or scores[q, r] >= threshold)][:k]
        indices[q, :len(allowed)] = allowed
        best[q, :len(allowed)] = scores[q, allowed]
    return indices, best


def random_bits(n, density, seed):
    return (np.random.default_rng(seed).random((n, N_BITS)) < density).astype(np.uint8)


@pytest.fixture(scope="module")
def library_bits():
    bits = random_bits(700, 0.08, 0)
    bits[5] = bits[3]  # exact duplicates make ties
    bits[600] = bits[3]
    bits[10] = 0  # an empty fingerprint
    return bits


@pytest.fixture(scope="module")
def library(library_bits):
    return FingerprintLibrary.from_packed(np.packbits(library_bits, axis=1))


def assert_same(result, expected):
    indices, scores = result
    np.testing.assert_array_equal(indices, expected[0])
    np.testing.assert_allclose(scores, expected[1], atol=1e-6, equal_nan=True)


BACKENDS = ["numba", "torch"]


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch):
    if request.param == "torch":
        monkeypatch.setattr(search_backends, "search_block", None)
    return request.param


def test_binary_queries_equal_brute_force(library, library_bits, backend):
    queries = np.vstack([random_bits(40, 0.08, 1), library_bits[3], np.zeros(N_BITS, np.uint8)])
    expected = brute_force(library_bits, queries, 10)
    for form in (np.packbits(queries, axis=1), queries, queries.astype(bool), queries.astype(np.float32)):
        assert_same(library.search(form, 10, device="cpu", block_size=16), expected)
    # The duplicated rows 3, 5 and 600 tie at 1.0 for query 40 and come in index order.
    assert library.search(queries[40], 3, device="cpu").indices.tolist() == [[3, 5, 600]]


@pytest.mark.parametrize("similarity", ["soft-tanimoto", "soft-tanimoto-sq"])
def test_probability_queries_equal_brute_force(library, library_bits, backend, similarity):
    rng = np.random.default_rng(2)
    queries = rng.random((30, N_BITS)) ** 4  # mostly small, like decoder outputs
    expected = brute_force(library_bits, queries, 7, similarity)
    assert_same(library.search(queries, 7, similarity=similarity, device="cpu", block_size=8), expected)


def test_probabilities_of_zero_and_one_score_as_binary(library, library_bits):
    queries = random_bits(5, 0.1, 3).astype(np.float64)
    a = library.search(queries, 5, similarity="soft-tanimoto-sq", device="cpu")
    b = library.search(queries.astype(np.uint8), 5, device="cpu")
    assert_same(a, (b.indices, b.scores))


def test_exclusion_and_threshold(library, library_bits, backend):
    queries = random_bits(12, 0.08, 4)
    excluded = list(range(0, 700, 3))
    expected = brute_force(library_bits, queries, 8, exclude=excluded, threshold=0.12)
    assert_same(library.search(queries, 8, exclude=excluded, threshold=0.12, device="cpu"), expected)
    mask = np.zeros(700, bool)
    mask[excluded] = True
    assert_same(library.search(queries, 8, exclude=mask, threshold=0.12, device="cpu"), expected)
    assert (library.search(queries, 8, threshold=1.01, device="cpu").indices == -1).all()


def test_k_larger_than_the_library_and_empty_queries(library_bits, backend):
    small = FingerprintLibrary.from_packed(np.packbits(library_bits[:4], axis=1))
    result = small.search(library_bits[:2], 6, device="cpu")
    assert result.indices.shape == (2, 6)
    assert (result.indices[:, 4:] == -1).all() and np.isnan(result.scores[:, 4:]).all()
    assert sorted(result.indices[0, :4]) == [0, 1, 2, 3]
    empty = small.search(np.zeros((0, N_BITS), np.uint8), 3, device="cpu")
    assert empty.indices.shape == (0, 3) and empty.scores.shape == (0, 3)


def test_shards_merge_to_the_unsharded_result(library, library_bits):
    queries = random_bits(20, 0.08, 5)
    shards = [FingerprintLibrary.from_packed(np.packbits(library_bits[a:b], axis=1))
              for a, b in ((0, 100), (100, 450), (450, 700))]
    assert_same(search_shards(shards, queries, 9, device="cpu"), library.search(queries, 9, device="cpu"))
    excluded = [0, 3, 5, 99, 100, 101, 449, 450, 600, 699]
    assert_same(search_shards(shards, queries, 9, exclude=excluded, device="cpu"),
                library.search(queries, 9, exclude=excluded, device="cpu"))


def test_saved_library_reopens_memory_mapped_with_identical_results(tmp_path, library_bits):
    packed = np.packbits(library_bits, axis=1)
    built = FingerprintLibrary.from_packed(packed, ids=[f"m{i}" for i in range(700)],
                                           smiles=["C" * (i % 5 + 1) for i in range(700)])
    built.save(tmp_path / "lib")
    opened = FingerprintLibrary.open(tmp_path / "lib")
    assert isinstance(opened.packed, np.memmap) and isinstance(opened.onbits, np.memmap)
    queries = random_bits(10, 0.08, 6)
    assert_same(opened.search(queries, 5, device="cpu"), built.search(queries, 5, device="cpu"))
    assert opened.smiles_at([0, 4, 6]) == ["C", "CCCCC", "CC"] and opened.ids_at([699]) == ["m699"]
    assert opened.source_ids_at([5]) == [None]  # built from arrays: no source file to name
    with pytest.raises(IndexError, match="library rows"):
        opened.smiles_at([700])


@pytest.mark.skipif(not BUNDLED_LIBRARY.exists(), reason="bundled MOSES library not present")
def test_real_fingerprints_equal_brute_force(backend):
    with gzip.open(BUNDLED_LIBRARY, "rt") as handle:
        smiles = [line.strip() for line in itertools.islice(handle, 1, 3001)]
    packed = morgan_packed([Chem.MolFromSmiles(s) for s in smiles])
    library = FingerprintLibrary.from_packed(packed)
    bits = np.unpackbits(packed, axis=1)
    queries = bits[::150]
    assert_same(library.search(queries, 10, device="cpu"), brute_force(bits, queries, 10))
    # Dyadic values sum exactly in float64 in any order, so tied rows tie in the reference too.
    probabilities = bits[1::150] * 0.6875 + 0.0625
    assert_same(library.search(probabilities, 10, device="cpu"), brute_force(bits, probabilities, 10))


@pytest.mark.parametrize(
    ("queries", "message"),
    [
        (np.zeros((2, 100), np.float32), "width 100"),
        (np.stack([np.full(N_BITS, 0.5), np.full(N_BITS, np.nan)]),
         r"query row 1 \(counting from 0\) contains NaN"),
        (np.full((3, N_BITS), 0.5) + np.eye(3, N_BITS),
         r"query row 0 \(counting from 0\) has value 1\.5 at bit 0"),
        (-np.ones((1, N_BITS)), "outside"),
        (np.array([["a"] * N_BITS]), "numeric"),
    ],
)
def test_bad_queries_are_clear_errors(library, queries, message):
    with pytest.raises(ValueError, match=message):
        library.search(queries, 3, device="cpu")


def test_bad_options(library):
    q = random_bits(1, 0.1, 7)
    with pytest.raises(ValueError, match="similarity"):
        library.search(q, 3, similarity="cosine", device="cpu")
    with pytest.raises(ValueError, match="k must be"):
        library.search(q, 0, device="cpu")
    with pytest.raises(ValueError, match="excluded rows"):
        library.search(q, 3, exclude=[700], device="cpu")


def test_a_format_1_library_opens_with_a_warning_that_library_id_will_be_empty(tmp_path, library_bits):
    FingerprintLibrary.from_packed(np.packbits(library_bits[:3], axis=1), ids=["a", "b", "c"]).save(tmp_path)
    names = pa.ipc.open_file(str(tmp_path / "molecules.arrow")).read_all().drop_columns(["source_id"])
    with pa.OSFile(str(tmp_path / "molecules.arrow"), "wb") as sink, \
            pa.ipc.new_file(sink, names.schema) as out:
        out.write_table(names)  # as format 1 wrote it
    info = json.loads((tmp_path / "library.json").read_text())
    (tmp_path / "library.json").write_text(json.dumps(info | {"format_version": 1}))
    with pytest.warns(UserWarning, match="library_id will be empty; rebuild it"):
        library = FingerprintLibrary.open(tmp_path)
    assert library.source_ids_at([2]) == [None] and library.ids_at([2]) == ["c"]
    (tmp_path / "library.json").write_text(json.dumps(info | {"format_version": 3}))
    with pytest.raises(ValueError, match="not a molvae library of format 1 or 2"):
        FingerprintLibrary.open(tmp_path)


def test_source_ids_prefer_the_file_id_and_else_name_file_and_row():
    rows = pd.DataFrame({"source": ["/data/a.smi", "/data/a.smi", "/x/b.csv"], "row": [4, 7, 2],
                         "record_id": ["Z123", None, ""]})
    assert dataset_source_ids(rows) == ["Z123", "a.smi:7", "b.csv:2"]
