"""One generation run as a chemist gets it: generate → score → select → export.

``molvae generate`` and the pipeline's candidates task both call :func:`generate_and_export`,
so the command line and the scheduled flow produce the same files from the same settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from molvae.chem.candidates import annotate_candidates, training_rows
from molvae.chem.export import ExportPaths, export_candidates
from molvae.chem.generate import GenerationRequest, generate_candidates
from molvae.chem.search import FingerprintLibrary
from molvae.chem.selection import select_candidates
from molvae.models.core import VAE


def generate_and_export(model: VAE, library: FingerprintLibrary, request: GenerationRequest,
                        out_csv: str | Path, *, train: FingerprintLibrary | None = None, novel: bool = False,
                        max_alerts: int | None = None,
                        ranges: Mapping[str, tuple[float, float]] | None = None, rank_by: str = "score",
                        diverse: int | None = None, similarity: str = "soft-tanimoto", device: str = "auto",
                        seed: int = 0, model_name: str = "", run_id: str = ""
                        ) -> tuple[ExportPaths, pd.DataFrame, dict]:
    """Exactly ``request.n`` unique library molecules, scored, selected and written beside ``out_csv``.

    ``train`` (the training molecules as a library) fills the novelty columns and, with
    ``novel``, keeps training molecules out. Returns the export paths, the selected
    candidates and the generation statistics (raw and unique hits, exported, left out).
    """
    if novel and train is None:
        raise ValueError("novel candidates need the training set (--train DATASET_DIR)")
    exclude = training_rows(library, train) if novel else None
    frame, stats = generate_candidates(model, library, request, exclude=exclude, similarity=similarity,
                                       device=device, seed=seed)
    scored = annotate_candidates(frame, library, model, train=train, model_name=model_name, run_id=run_id,
                                 seed=seed)
    selected, rejects = select_candidates(scored, library.packed[scored["library_index"].to_numpy()],
                                          max_alerts=max_alerts, ranges=ranges, rank_by=rank_by,
                                          diverse=diverse, seed=seed)
    paths = export_candidates(selected, rejects, out_csv)
    return paths, selected, stats | {"exported": len(selected), "left_out": len(rejects)}
