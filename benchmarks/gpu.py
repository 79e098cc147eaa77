"""The checks to run when a GPU is lent: training with AMP, exact search and generation on CUDA.

It reads only the bundled data (``data/moses``), so the device machine needs nothing beside
the repository but the packages it lacks (RDKit), carried as wheels. Prepare them here once:

    echo /.whl/ >> .git/info/exclude
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl rdkit==2026.9.1

then run it there in one call (``carry: [".whl"]``):

    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && \
        PYTHONPATH=/tmp/site:. PYTHONUNBUFFERED=1 python3 benchmarks/gpu.py --out $OUT/gpu.json

Steps, each timed and checked:

1. ingest the bundled training set and library (``--properties none``);
2. train the default MolecularVAE on ``--device`` (bf16 autocast on CUDA);
3. decode prior draws of it into binary (``sample``) and probability (``mean``) queries and
   search the library on the CPU kernel and on ``--device``: the top-k must agree, ties
   included (the CUDA path is exact, not approximate);
4. ``generate_candidates`` on ``--device``: exactly ``--n`` unique molecules.

``--device cpu`` runs the same steps here, to check the script without a GPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rdkit import RDLogger

from molvae.chem.experiment import train_molecular_model
from molvae.chem.generate import GenerationRequest, decoded_queries, generate_candidates
from molvae.chem.ingest import IngestSettings, ingest
from molvae.chem.search import FingerprintLibrary, SearchResult
from molvae.device import resolve_device
from molvae.models import load_model
from molvae.training import TrainConfig

DATA = Path(__file__).resolve().parent.parent / "data" / "moses"


def timed(function: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """The result and wall seconds of one call, with the GPU's queue drained on both sides."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    started = time.perf_counter()
    result = function(*args, **kwargs)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return result, time.perf_counter() - started


def agreement(reference: SearchResult, other: SearchResult) -> dict[str, float]:
    """How far two searches of the same queries agree: rows with identical top-k lists, and score gaps."""
    same_rows = (reference.indices == other.indices).all(axis=1)
    gap = np.nanmax(np.abs(reference.scores - other.scores)) if reference.scores.size else 0.0
    return {"identical_rows": float(same_rows.mean()), "max_score_difference": float(gap)}


def search_check(library: FingerprintLibrary, queries: np.ndarray, k: int, device: torch.device,
                 similarity: str) -> dict[str, float]:
    library.search(queries[:8], k, similarity=similarity, device="cpu")  # compile outside the timings
    library.search(queries[:8], k, similarity=similarity, device=str(device))
    cpu, cpu_s = timed(library.search, queries, k, similarity=similarity, device="cpu")
    accelerated, accelerated_s = timed(library.search, queries, k, similarity=similarity, device=str(device))
    return {"queries": len(queries), "cpu_seconds": cpu_s, "device_seconds": accelerated_s,
            "speedup": cpu_s / accelerated_s, **agreement(cpu, accelerated)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", type=Path, required=True, help="JSON of every step's numbers.")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--n", type=int, default=1_000, help="candidates to generate")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    args = parser.parse_args()
    RDLogger.DisableLog("rdApp.*")
    device = resolve_device(args.device)
    report: dict[str, Any] = {"device": str(device), "torch": torch.__version__,
                              "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None}
    work = args.work or Path(tempfile.mkdtemp(prefix="molvae-gpu-"))

    _, report["ingest_seconds"] = timed(lambda: (
        ingest([DATA / "train.csv.gz"], work / "train", IngestSettings(properties="none")),
        ingest([DATA / "library.csv.gz"], work / "library-ds", IngestSettings(properties="none"))))
    library = FingerprintLibrary.from_dataset(work / "library-ds")

    config = TrainConfig(epochs=args.epochs, device=str(device), progress=False, patience=None)
    metrics, train_s = timed(train_molecular_model, work / "train", work / "model", train_config=config)
    report["train"] = {"seconds": train_s, **{key: metrics[key] for key in (
        "n_train", "seconds_per_epoch", "samples_per_second", "val_neg_elbo_nats", "val_recon_nats")
        if key in metrics}}
    print(json.dumps(report, indent=2), flush=True)

    model = load_model(work / "model", device).eval()
    generator = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        z, _ = model.draw(args.queries, 1.0, None, generator, "fitted")
        binary = decoded_queries(model, z, None, "sample", generator)
        probabilities = decoded_queries(model, z, None, "mean", generator)
    # Binary queries are scored by exact Tanimoto whatever ``similarity`` says.
    report["search_binary"] = search_check(library, binary, args.k, device, "soft-tanimoto")
    report["search_probabilities"] = search_check(library, probabilities, args.k, device, "soft-tanimoto")
    print(json.dumps({key: report[key] for key in ("search_binary", "search_probabilities")}, indent=2),
          flush=True)

    (frame, stats), generate_s = timed(generate_candidates, model, library, GenerationRequest(n=args.n),
                                       device=str(device))
    report["generate"] = {"seconds": generate_s, "candidates": len(frame),
                          "unique": int(frame["library_index"].nunique()),
                          "raw_samples": stats["raw_samples"], "unique_fraction": stats["unique_fraction"]}
    exact = all(report[key]["identical_rows"] == 1.0 for key in ("search_binary", "search_probabilities"))
    generated = report["generate"]
    report["checks_passed"] = exact and generated["candidates"] == generated["unique"] == args.n
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    sys.exit(0 if report["checks_passed"] else 1)


if __name__ == "__main__":
    main()
