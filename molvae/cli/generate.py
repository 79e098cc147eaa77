"""``molvae generate``: sample a MolecularVAE and decode to exactly N unique library molecules."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from molvae.cli.errors import user_errors

console = Console()


def parse_targets(text: str | None) -> dict[str, float]:
    """``qed=0.9,clogp=2.5`` → {"qed": 0.9, "clogp": 2.5}, with errors naming the bad part."""
    targets: dict[str, float] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            targets[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"bad condition {part!r}: expected name=value, e.g. qed=0.9") from None
    return targets


@user_errors
def generate_command(
    model_dir: Path = typer.Argument(..., help="Model folder written by 'molvae train'."),
    library: Path = typer.Option(..., "--library", help="Library folder from 'molvae library build'."),
    n: int = typer.Option(100, "-n", help="Unique candidates to return (exactly, or an error)."),
    out: Path = typer.Option(..., "-o", "--out", help="Candidates CSV."),
    temperature: float = typer.Option(1.0, "--temperature", help="Prior scale (prior and condition modes)."),
    around: list[str] = typer.Option([], "--around", help="Seed SMILES for analogs (repeatable)."),
    spread: float = typer.Option(0.5, "--spread", help="Latent spread around seeds, in prior units."),
    condition: str | None = typer.Option(None, "--condition", help="CVAE targets, e.g. qed=0.9,clogp=2.5"),
    novel: bool = typer.Option(False, "--novel", help="Exclude the training set (needs --train)."),
    train: Path | None = typer.Option(None, "--train", help="The training dataset, for --novel."),
    similarity: str = typer.Option("soft-tanimoto", "--similarity"),
    batch_size: int = typer.Option(512, "--batch-size", help="Latent draws per round."),
    max_rounds: int = typer.Option(50, "--max-rounds"),
    device: str = typer.Option("auto", "--device"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Prior samples, analogs around seeds (--around), or property targets (--condition)."""
    import numpy as np

    from molvae.chem.generate import GenerationRequest, generate_candidates
    from molvae.chem.search import FingerprintLibrary
    from molvae.data import MoleculeDataset
    from molvae.device import resolve_device
    from molvae.io import atomic_path
    from molvae.models import load_model

    targets = parse_targets(condition)
    mode = "around" if around else "condition" if targets else "prior"
    request = GenerationRequest(n=n, mode=mode, temperature=temperature, seeds=around, spread=spread,
                                targets=targets, batch_size=batch_size, max_rounds=max_rounds)
    lib = FingerprintLibrary.open(library)
    exclude = None
    if novel:
        if train is None:
            raise ValueError("--novel needs --train DATASET_DIR (the dataset the model was trained on)")
        train_keys = set(MoleculeDataset(train).molecules(["inchikey"])["inchikey"])
        exclude = np.isin(np.array(lib.ids_at(np.arange(len(lib))), dtype=object), list(train_keys))
    model = load_model(model_dir, resolve_device(device))
    frame, stats = generate_candidates(model, lib, request, exclude=exclude, similarity=similarity,
                                       device=device, seed=seed)
    with atomic_path(out) as tmp:
        frame.to_csv(tmp, index=False)
    console.print(f"wrote {len(frame)} candidates to {out}", markup=False, soft_wrap=True)
    console.print_json(json.dumps(stats))
