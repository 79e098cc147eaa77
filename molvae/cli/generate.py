"""``molvae generate``: sample a MolecularVAE and decode to exactly N unique library molecules."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from molvae.chem.hubness import DEFAULT_HUB_NEIGHBOURS
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
            number = float(value)
        except ValueError:
            raise ValueError(f"bad condition {part!r}: expected name=value, e.g. qed=0.9") from None
        if name.strip() in targets:
            raise ValueError(f"condition {name.strip()!r} is given twice")
        targets[name.strip()] = number
    return targets


@user_errors
def generate_command(
    model_dir: Path = typer.Argument(..., help="Model folder written by 'molvae train'."),
    library: Path = typer.Option(..., "--library", help="Library folder from 'molvae library build'."),
    n: int = typer.Option(100, "-n", help="Unique candidates to generate (exactly, or an error)."),
    out: Path = typer.Option(..., "-o", "--out", help="Candidates CSV (.sdf, .png, .rejects.csv beside)."),
    temperature: float = typer.Option(1.0, "--temperature", help="Prior scale (prior and condition modes)."),
    prior: str = typer.Option("fitted", "--prior",
                              help="fitted: the latent density saved with the model (N(0, I) if it has "
                                   "none); standard: N(0, I)."),
    around: list[str] = typer.Option([], "--around", help="Seed SMILES for analogs (repeatable)."),
    spread: float = typer.Option(0.5, "--spread", help="Latent spread around seeds, in prior units."),
    include_seeds: bool = typer.Option(False, "--include-seeds",
                                       help="--around: let the seeds themselves be candidates (left out by "
                                            "default, since analogs are asked for)."),
    condition: str | None = typer.Option(
        None, "--condition", help="CVAE targets, e.g. qed=0.9,clogp=2.5; conditions left out are drawn "
                                  "by the model."),
    guide_k: int | None = typer.Option(
        None, "--guide-k", help="--condition: each draw keeps the one of its K nearest library molecules "
                                "chosen by the targets (default by library size: 24, or 48 above ~500k "
                                "molecules; 1: no guide)."),
    guide_band: float | None = typer.Option(
        None, "--guide-band", help="--condition: keep the best molecule within this many tolerances of every "
                                  "target (cLogP 0.5, MW 25 Da, QED 0.1), else the nearest to them "
                                  "(default 0.85, or 0.5 above ~500k molecules; 0: always the nearest to "
                                  "the targets)."),
    hubness: int = typer.Option(
        DEFAULT_HUB_NEIGHBOURS, "--hubness",
        help="Hubness correction: each draw takes the best by CSLS with this many neighbours of its few "
             "nearest library molecules, so a batch does not pile onto the same ones (0: the nearest)."),
    train: Path | None = typer.Option(None, "--train", help="Training dataset: novelty, --novel."),
    novel: bool = typer.Option(False, "--novel", help="Exclude the training set (needs --train)."),
    max_alerts: int | None = typer.Option(None, "--max-alerts", help="Drop candidates with more alerts."),
    ranges: str | None = typer.Option(None, "--range", help="Keep only e.g. mw=200:450,clogp=:3,qed=0.5:"),
    rank_by: str = typer.Option(
        "score", "--rank-by",
        help="COLUMN or COLUMN:asc|desc: 'score' (documented) or any numeric column. Without a direction, "
             "sa_score, lipinski_violations and n_alerts rank lowest first, ad_score and ad_percentile need "
             "one (both their tails are out of domain), the rest rank highest first."),
    diverse: int | None = typer.Option(None, "--diverse", help="Keep N by MaxMin diversity after ranking."),
    decode: str = typer.Option("sample", "--decode",
                               help="sample: Bernoulli bits, exact Tanimoto; mean: soft Tanimoto."),
    similarity: str = typer.Option("soft-tanimoto", "--similarity", help="For --decode mean."),
    batch_size: int = typer.Option(512, "--batch-size", help="Latent draws per round."),
    max_rounds: int = typer.Option(50, "--max-rounds"),
    run_id: str = typer.Option("", "--run-id", help="Provenance id for every row (pipelines pass theirs)."),
    device: str = typer.Option("auto", "--device"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Prior samples, analogs (--around) or property targets (--condition), scored and exported."""
    from molvae.chem.candidate_run import generate_and_export
    from molvae.chem.generate import GenerationRequest
    from molvae.chem.search import FingerprintLibrary
    from molvae.chem.selection import parse_ranges, parse_rank_by
    from molvae.device import resolve_device
    from molvae.models import load_model

    targets = parse_targets(condition)
    mode = "around" if around else "condition" if targets else "prior"
    request = GenerationRequest(n=n, mode=mode, temperature=temperature, seeds=around, spread=spread,
                                include_seeds=include_seeds, targets=targets, batch_size=batch_size,
                                max_rounds=max_rounds, decode=decode,
                                prior=prior, guide_k=guide_k, guide_band=guide_band, hubness=hubness)
    filter_ranges = parse_ranges(ranges)
    parse_rank_by(rank_by)  # a bad direction fails now, not after the model has loaded and generated
    if novel and train is None:
        raise ValueError("--novel needs --train DATASET_DIR (the dataset the model was trained on)")
    lib = FingerprintLibrary.open(library)
    train_lib = FingerprintLibrary.from_dataset(train) if train is not None else None
    model = load_model(model_dir, resolve_device(device))
    paths, selected, stats = generate_and_export(
        model, lib, request, out, train=train_lib, novel=novel, max_alerts=max_alerts, ranges=filter_ranges,
        rank_by=rank_by, diverse=diverse, similarity=similarity, device=device, seed=seed,
        model_name=str(model_dir), run_id=run_id)
    console.print(f"wrote {len(selected)} candidates to {paths.csv} (with {paths.sdf.name}"
                  f"{', ' + paths.png.name if len(selected) else ''}); {stats['left_out']} left out, "
                  f"with reasons, in {paths.rejects}", markup=False, soft_wrap=True)
    for name, stds in stats.get("targets_far_from_training", {}).items():
        console.print(f"warning: the target {name}={targets[name]:g} is {stds:+.1f} training standard "
                      "deviations from the training mean; the candidates come only as close as the library "
                      f"allows (see achieved_{name})", markup=False, soft_wrap=True, style="yellow")
    console.print_json(json.dumps(stats))
