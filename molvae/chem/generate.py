"""Generation: latent draws → decoded fingerprints → nearest real library molecules.

Each round draws a batch of latent points for the chosen mode, decodes them to bit
probabilities and takes each one's nearest library molecule, or, with the hubness
correction (the default, :mod:`molvae.chem.hubness`), the best by CSLS of its few nearest,
taken over all draws so far, so that they do not pile onto the same hub molecules.
Molecules already found (and any excluded rows, e.g. the training set) are kept out, and
rounds continue until exactly ``n`` unique candidates exist, or stop with
:class:`GenerationShortfall` explaining why. The raw draws are counted before
de-duplication, so hubness (many samples landing on the same few molecules) shows in the
statistics instead of being hidden.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from molvae.chem.fingerprints import unpack_bits
from molvae.chem.guided import (
    LibraryProperties,
    PropertyGuide,
    check_guide,
    default_guide,
    guide_tolerances,
    joined_hits,
    kept_hits,
    search_width,
)
from molvae.chem.hubness import DEFAULT_HUB_NEIGHBOURS
from molvae.chem.reconstruct import check_compatible, prepare_inputs
from molvae.chem.search import FingerprintLibrary, SearchResult
from molvae.errors import GenerationShortfall
from molvae.models.core import PRIORS, VAE
from molvae.models.molecular import ConditionScaler

MODES = ("prior", "around", "condition")
# A target further than this many training standard deviations from the training mean lies
# outside what the model learned; generation still runs, and the statistics name it.
FAR_TARGET_STDS = 3.0
# How a decoded draw becomes a search query. "sample" draws the fingerprint's bits from the
# decoder's Bernoulli probabilities (the model's own generative step) and searches by exact
# Tanimoto; "mean" searches with the probabilities themselves by soft Tanimoto. Measured on a
# model trained on the bundled 20k MOSES molecules (β 0.05, 10 epochs, batch 512), 2,000 prior
# draws against the bundled 100k library: "mean" reached 1% unique molecules (blurry
# probabilities all land on the same dense hubs), "sample" 91% (benchmarks/bundled.py).
DECODES = ("sample", "mean")


@dataclass
class GenerationRequest:
    """What to generate: ``n`` unique library molecules by ``mode``."""

    n: int
    mode: str = "prior"
    temperature: float = 1.0
    seeds: Sequence[str] = ()
    spread: float = 0.5
    # Mode "around" asks for analogs, so the seeds themselves are left out of the library
    # unless this is set (a seed the library holds would otherwise come first).
    include_seeds: bool = False
    targets: Mapping[str, float] = field(default_factory=dict)
    batch_size: int = 512
    max_rounds: int = 50
    decode: str = "sample"
    prior: str = "fitted"
    # Nearest library molecules each draw chooses among by closeness to the targets
    # (molvae.chem.guided); None: 1 (no guidance) outside mode "condition", and in it the
    # default for the library's size (default_guide), as is a band of None.
    guide_k: int | None = None
    guide_band: float | None = None
    # CSLS neighbours of the hubness correction (molvae.chem.hubness); 0 turns it off.
    hubness: int | None = None  # None: DEFAULT_HUB_NEIGHBOURS

    def guide_settings(self, library_size: int) -> tuple[int, float]:
        """The guide's (k, band): as asked, else the defaults for this many eligible library molecules."""
        k, band = default_guide(library_size)
        return (k if self.guide_k is None else self.guide_k,
                band if self.guide_band is None else self.guide_band)

    def __post_init__(self) -> None:
        if self.guide_k is None and self.mode != "condition":
            self.guide_k = 1
        if self.hubness is None:
            self.hubness = DEFAULT_HUB_NEIGHBOURS
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.include_seeds and self.mode != "around":
            raise ValueError("include_seeds applies to mode 'around' (--around SMILES) only")
        if self.decode not in DECODES:
            raise ValueError(f"decode must be one of {DECODES}, got {self.decode!r}")
        if self.prior not in PRIORS:
            raise ValueError(f"prior must be one of {PRIORS}, got {self.prior!r}")
        if self.n < 1 or self.batch_size < 1 or self.max_rounds < 1:
            raise ValueError("n, batch_size and max_rounds must be >= 1")
        if self.mode == "around" and not self.seeds:
            raise ValueError("mode 'around' needs seed molecules (--around SMILES)")
        if self.mode == "condition" and not self.targets:
            raise ValueError("mode 'condition' needs targets, e.g. qed=0.9,clogp=2.5")
        if self.targets and self.mode != "condition":  # they would be reported but never aimed at
            raise ValueError(f"targets (--condition) go with mode 'condition', not {self.mode!r}: "
                             "give seeds (--around) or targets, not both")
        check_guide(self.guide_k, self.guide_band, self.hubness)
        if self.guide_k is not None and self.guide_k > 1 and self.mode != "condition":
            raise ValueError("property guidance (guide_k > 1) needs targets: use mode 'condition'")


@torch.no_grad()
def _draw(model: VAE, request: GenerationRequest, size: int, seed_means: torch.Tensor | None,
          condition: torch.Tensor | None, generator: torch.Generator,
          drawn: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Search queries of ``size`` draws (see :data:`DECODES`), and which seed each came from (-1 if none).

    Seeds take turns across rounds, counting the ``drawn`` draws of earlier rounds, so every
    seed is used even when there are more seeds than draws in a round.
    """
    origin = np.full(size, -1)
    if request.mode == "around":
        device = seed_means.device
        eps = torch.randn((size, model.latent_dim), generator=generator, device=device)
        origin = (drawn + np.arange(size)) % len(seed_means)
        z = seed_means[torch.from_numpy(origin).to(device)] + request.spread * eps
        cond = None
    else:
        z, cond = model.draw(size, request.temperature, condition, generator, request.prior)
    return decoded_queries(model, z, cond, request.decode, generator), origin


def prior_used(model: VAE, request: GenerationRequest) -> str:
    """Where the draws came from: "fitted" only if asked for and the model has a density."""
    if request.mode == "around":
        return "around seeds"
    return "fitted" if model.uses_fitted_prior(request.prior) else "standard"


@torch.no_grad()
def decoded_queries(model: VAE, z: torch.Tensor, condition: torch.Tensor | None, decode: str,
                    generator: torch.Generator) -> np.ndarray:
    """Bit probabilities (``mean``) or Bernoulli-sampled 0/1 fingerprints (``sample``) of latents."""
    probabilities = model.mean_output(model.decode(z, condition)).float()
    if decode == "sample":
        return torch.bernoulli(probabilities, generator=generator).to(torch.uint8).cpu().numpy()
    return probabilities.cpu().numpy()


def generate_candidates(model: VAE, library: FingerprintLibrary, request: GenerationRequest, *,
                        exclude: np.ndarray | None = None, similarity: str = "soft-tanimoto",
                        device: str = "auto", seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """Exactly ``request.n`` unique candidates, best decode similarity first, and statistics.

    ``exclude`` masks library rows never to return (the training set, for novel candidates).
    """
    settings = check_compatible(model, library)
    model.eval()
    model_device = next(model.parameters()).device
    generator = torch.Generator(device=model_device).manual_seed(seed)
    seed_means = seed_smiles = None
    seed_keys: list[str] = []
    if request.mode == "around":
        inputs = prepare_inputs(list(request.seeds), settings)
        if inputs.rejected:
            position, reason = next(iter(inputs.rejected.items()))
            raise ValueError(f"seed {position + 1} ({request.seeds[position]!r}): {reason}")
        if model.condition_dim:
            raise ValueError("'around' needs an unconditional model")
        seed_means = model.encode(unpack_bits(torch.from_numpy(inputs.packed).to(model_device)))[0]
        seed_smiles = [m.smiles for m in inputs.molecules]
        seed_keys = [m.inchikey for m in inputs.molecules]
    condition = guide = None
    guided: list[str] = []  # the targets the guide aims at
    free: list[str] = []  # conditions the request leaves to the model
    far: dict[str, float] = {}  # targets beyond FAR_TARGET_STDS, in training standard deviations
    if model.condition_dim:
        if request.mode != "condition":
            raise ValueError("this conditional model needs --condition targets")
        scaler = ConditionScaler.from_config(model.config)
        # Conditions the request leaves out are drawn with the latents (VAE.draw), not guided.
        condition = scaler.normalize(dict(request.targets), partial=True).to(model_device)
        free = [name for name in scaler.names if name not in request.targets]
        far = {name: round(float(z), 1) for name, z in zip(scaler.names, condition[0].tolist(), strict=True)
               if abs(z) > FAR_TARGET_STDS}  # NaN (a free condition) compares False
        guided = [name for name in scaler.names if name in request.targets]
    elif request.mode == "condition":
        raise ValueError("mode 'condition' needs a model trained with --kind cvae")

    blocked = np.zeros(len(library), dtype=bool) if exclude is None else exclude.copy()
    seeds_excluded = 0
    if seed_keys and not request.include_seeds:
        seed_rows = library.rows_with_ids(seed_keys)
        seeds_excluded = int((seed_rows & ~blocked).sum())
        blocked |= seed_rows
    available = int((~blocked).sum())
    if available < request.n:  # no number of rounds could help: say so before searching
        raise GenerationShortfall(
            f"only {available} of the library's {len(library)} molecules are eligible"
            + (f" ({len(library) - available} excluded by --novel or as seeds)" if available < len(library)
               else "")
            + f", fewer than -n {request.n}. Lower -n or use a larger library.")
    guide_k, guide_band = request.guide_settings(available)
    if guided and guide_k > 1:
        tolerances = guide_tolerances(scaler.names, scaler.stds)
        guide = PropertyGuide(LibraryProperties(library, guided), request.targets, guide_k,
                              {name: tolerances[name] for name in guided}, guide_band)
    chosen: dict[int, tuple[float, int]] = {}  # library row → (decode similarity, seed index)
    raw = 0
    raw_hits: list[int] = []
    earlier: SearchResult | None = None  # all rounds' hits so far, for the hub terms
    for _ in range(request.max_rounds):
        queries, origin = _draw(model, request, request.batch_size, seed_means, condition, generator, raw)
        hits = library.search(queries, search_width(guide, request.hubness), exclude=blocked,
                              similarity=similarity, device=device)
        rows, scores = kept_hits(hits, guide, set(chosen) if guide is not None else None, request.hubness,
                                 earlier)
        if request.hubness:
            earlier = hits if earlier is None else joined_hits(earlier, hits)
        raw += len(queries)
        for row, score, source in zip(rows, scores, origin, strict=True):
            if row < 0:
                continue
            raw_hits.append(int(row))
            if row not in chosen and len(chosen) < request.n:
                chosen[int(row)] = (float(score), int(source))
        if len(chosen) >= request.n:
            break
    stats = {"prior": prior_used(model, request), "guide_k": guide_k,
             "guide_band": guide_band if guide is not None else None, "hubness": request.hubness,
             "free_conditions": free, "targets_far_from_training": far, "seeds_excluded": seeds_excluded,
             "raw_samples": raw, "raw_unique": len(set(raw_hits)),
             "unique_fraction": len(set(raw_hits)) / max(1, len(raw_hits)), "candidates": len(chosen)}
    if len(chosen) < request.n:
        raise GenerationShortfall(
            f"only {len(chosen)} unique library molecules after {raw} samples ({request.max_rounds} rounds "
            f"of {request.batch_size}); {available} library rows were eligible. Lower -n, raise "
            f"--temperature/--spread, use a larger library, or allow more rounds.")
    rows = sorted(chosen.items(), key=lambda item: (-item[1][0], item[0]))
    indices = np.array([row for row, _ in rows], dtype=np.int64)
    frame = pd.DataFrame({
        "rank": np.arange(1, len(rows) + 1), "smiles": library.smiles_at(indices),
        "library_id": library.source_ids_at(indices), "library_index": indices,
        "decode_similarity": [score for _, (score, _) in rows]})
    if seed_smiles is not None:
        frame["seed_smiles"] = [seed_smiles[source] for _, (_, source) in rows]
    for name, value in dict(request.targets).items():
        frame[f"target_{name}"] = value
    return frame, stats


@torch.no_grad()
def interpolation_path(model: VAE, library: FingerprintLibrary, start: str, end: str, steps: int = 10,
                       method: str = "slerp", similarity: str = "soft-tanimoto",
                       device: str = "auto", exclude: np.ndarray | None = None) -> pd.DataFrame:
    """The distinct library molecules met along the latent path between two molecules.

    Both ends are encoded to their posterior means; ``steps`` points on the lerp/slerp path
    are decoded and each taken to its nearest library molecule outside ``exclude`` (a boolean
    mask, e.g. the training set, which may hold both ends). Each molecule gets one row, in
    order of the first step that decoded to it, with that step's decode similarity, the last
    step that decoded to it and how many did (a path can leave a molecule and come back).
    """
    from molvae.latent import interpolate

    settings = check_compatible(model, library)
    if model.condition_dim:
        raise ValueError("interpolation needs an unconditional model")
    if not len(library) or (exclude is not None and exclude.all()):
        raise ValueError("every library molecule is excluded, or the library is empty: none is left to "
                         "decode the path to")
    inputs = prepare_inputs([start, end], settings)
    if inputs.rejected:
        position, reason = next(iter(inputs.rejected.items()))
        which = "start" if position == 0 else "end"
        raise ValueError(f"{which} molecule {[start, end][position]!r}: {reason}")
    model.eval()
    x = unpack_bits(torch.from_numpy(inputs.packed).to(next(model.parameters()).device))
    probabilities = interpolate(model, x[0], x[1], steps, method).float().cpu().numpy()
    hits = library.search(probabilities, 1, exclude=exclude, similarity=similarity, device=device)
    decoded = pd.DataFrame({"library_index": hits.indices[:, 0], "step": np.arange(len(hits.indices)),
                            "decode_similarity": hits.scores[:, 0]})
    frame = decoded.groupby("library_index", sort=False).agg(  # sort=False: rows in first-step order
        first_step=("step", "first"), last_step=("step", "last"), steps=("step", "size"),
        decode_similarity=("decode_similarity", "first")).reset_index()
    frame.insert(0, "position", np.arange(1, len(frame) + 1))
    frame.insert(1, "smiles", library.smiles_at(frame["library_index"].to_numpy()))
    frame.insert(2, "library_id", library.source_ids_at(frame["library_index"].to_numpy()))
    return frame
