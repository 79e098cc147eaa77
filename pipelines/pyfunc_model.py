"""The MLflow pyfunc of a MolecularVAE, logged as code (MLflow "models from code").

Nothing is pickled: ``load_context`` rebuilds the model from its ``config.json``, its
``weights.pt`` state_dict and, when present, ``latent_density.pt``, and opens the library
folder; both folders are logged as artifacts.

``predict`` takes a DataFrame and returns candidates:

- a ``smiles`` column: reconstruction, the top ``k`` (an optional ``k`` column, default 10)
  decoded library molecules of each input, one row per input and rank;
- otherwise a generation request of one row: ``n`` and optionally ``mode``, ``prior``,
  ``guide_k``, ``guide_band``, ``hubness``, ``temperature``, ``around`` (SMILES separated by
  ``;``), ``spread``, ``include_seeds`` (true/false), ``seed`` and ``target_<property>``
  columns; returns exactly ``n`` unique candidates.
"""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class MolecularVAEModel(PythonModel):
    def load_context(self, context: Any) -> None:
        from molvae.chem.search import FingerprintLibrary
        from molvae.models import load_model

        self.model = load_model(context.artifacts["model"], "cpu")
        self.library = FingerprintLibrary.open(context.artifacts["library"])

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        from molvae.chem.generate import GenerationRequest, generate_candidates
        from molvae.chem.reconstruct import reconstruct

        if "smiles" in model_input:
            k = int(model_input["k"].iloc[0]) if "k" in model_input else 10
            return reconstruct(
                self.model, self.library, model_input["smiles"].astype(str).tolist(), k, device="cpu"
            )
        if len(model_input) != 1 or "n" not in model_input:
            raise ValueError(
                "give a 'smiles' column, or one request row with 'n' (and mode, prior, decode, "
                "temperature, around, spread, include_seeds, guide_k, guide_band, hubness, seed, "
                "target_<property>)"
            )
        row = model_input.iloc[0].to_dict()
        targets = {
            key.removeprefix("target_"): float(value)
            for key, value in row.items()
            if key.startswith("target_")
        }
        seeds = [s for s in str(row.get("around") or "").split(";") if s]
        mode = row.get("mode") or ("around" if seeds else "condition" if targets else "prior")
        request = GenerationRequest(
            n=int(row["n"]),
            mode=mode,
            temperature=float(row.get("temperature", 1.0)),
            seeds=seeds,
            spread=float(row.get("spread", 0.5)),
            include_seeds=_flag(row.get("include_seeds")),
            targets=targets,
            decode=str(row.get("decode") or "sample"),
            prior=str(row.get("prior") or "fitted"),
            guide_k=None if _missing(row.get("guide_k")) else int(float(row["guide_k"])),
            guide_band=None if _missing(row.get("guide_band")) else float(row["guide_band"]),
            hubness=None if _missing(row.get("hubness")) else int(float(row["hubness"])),
        )
        frame, _ = generate_candidates(
            self.model, self.library, request, device="cpu", seed=int(row.get("seed", 0))
        )
        return frame


def _missing(value: Any) -> bool:
    """An absent, empty or NaN cell of a request row (DataFrames fill absent cells with NaN)."""
    return value is None or (isinstance(value, str) and not value.strip()) or (
        not isinstance(value, str) and bool(pd.isna(value)))


mlflow.models.set_model(MolecularVAEModel())


def _flag(value: Any) -> bool:
    """A request row's yes/no cell: absent (no), a bool or number, or true/false/yes/no/1/0 text."""
    if _missing(value):
        return False
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "yes", "1"):
            return True
        if text in ("false", "no", "0"):
            return False
        raise ValueError(f"include_seeds must be true or false, got {value!r}")
    return bool(value)
