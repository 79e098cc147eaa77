"""Flow parameters: pydantic models, loadable from YAML, with errors named by field.

A config file holds any subset of the fields; the rest take their defaults, which run the
pipeline on the bundled data. Command-line options override the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from molvae.chem.hubness import DEFAULT_HUB_NEIGHBOURS
from molvae.device import PRECISION_HELP

DATA = Path(__file__).resolve().parents[1] / "data"
BUNDLED_TRAIN = DATA / "moses" / "train.csv.gz"
BUNDLED_LIBRARY = DATA / "moses" / "library.csv.gz"


class ConfigError(ValueError):
    """A config that does not validate; the message names each bad field."""


class _Strict(BaseModel):
    # Unknown keys are errors: a typo in a YAML file must not silently fall back to a default.
    model_config = ConfigDict(extra="forbid")


class MolecularRunConfig(_Strict):
    """Everything one run of the ``molecular_generation`` flow needs."""

    train: Path = Field(BUNDLED_TRAIN, description="Training molecules (any format molvae ingest reads).")
    library: Path = Field(BUNDLED_LIBRARY, description="Library molecules that decoding retrieves.")
    out: Path = Field(Path("runs/molecular"), description="Output folder (datasets, model, candidates).")
    kind: Literal["vae", "cvae", "beta-vae"] = "vae"
    condition: list[str] = Field(default_factory=list, description="cvae property columns, e.g. [qed, mw].")
    latent_dim: int = Field(128, ge=1)
    hidden: list[int] = Field(default_factory=lambda: [1024, 512])
    epochs: int = Field(10, ge=1)
    # Steps, not epochs, set how much a small training set teaches: on the bundled 20k molecules
    # (β 0.05, 10 epochs) batch 512 reached KL 9 nats and 0% recovery of unseen library
    # molecules, batch 128 KL 72 nats and 27% top-1 / 65% top-10 (benchmarks/bundled.py).
    batch_size: int = Field(128, ge=1)
    lr: float = Field(1e-3, gt=0)
    beta: float | None = Field(None, gt=0, description="KL weight (default: the kind's, 0.002 for vae).")
    warmup_steps: int = Field(0, ge=0)
    density_components: int = Field(1, ge=1, description="Gaussians in the fitted latent density.")
    n_candidates: int = Field(100, ge=1)
    mode: Literal["prior", "around", "condition"] = "prior"
    temperature: float = Field(1.0, gt=0)
    prior: Literal["fitted", "standard"] = Field("fitted", description="Fitted latent density or N(0, I).")
    around: list[str] = Field(default_factory=list, description="Seed SMILES for mode 'around'.")
    spread: float = Field(0.5, gt=0)
    include_seeds: bool = Field(False, description="Mode 'around': let the seeds themselves be candidates.")
    targets: dict[str, float] = Field(default_factory=dict, description="Targets for mode 'condition'.")
    guide_k: int | None = Field(None, ge=1, description="Mode 'condition': nearest library molecules "
                                                        "each draw chooses among by target closeness "
                                                        "(default by library size: 24, 48 above ~500k).")
    guide_band: float | None = Field(None, ge=0, description="Mode 'condition': the best molecule within "
                                                             "this many tolerances of every target is kept "
                                                             "(default 0.85, 0.5 above ~500k molecules).")
    hubness: int = Field(DEFAULT_HUB_NEIGHBOURS, ge=0, description="CSLS neighbours of the hubness "
                                                                   "correction of draws (0: nearest "
                                                                   "neighbour).")
    decode: Literal["sample", "mean"] = Field("sample", description="Bernoulli bits or soft Tanimoto.")
    novel: bool = Field(True, description="Never return training molecules.")
    max_alerts: int | None = Field(None, ge=0)
    ranges: dict[str, tuple[float | None, float | None]] = Field(
        default_factory=dict, description="e.g. {mw: [200, 450], clogp: [null, 3]}; null is an open end.")
    rank_by: str = Field("score", description="COLUMN or COLUMN:asc|desc (molvae generate --rank-by).")
    diverse: int | None = Field(None, ge=1)
    eval_molecules: int = Field(500, ge=1, description="Library molecules held out for recovery.")
    eval_samples: int = Field(2000, ge=1, description="Prior draws for hubness and set metrics.")
    workers: int | None = Field(None, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16"] = Field("auto", description=PRECISION_HELP)
    seed: int = 0
    experiment: str = "molvae-molecular"
    model_name: str = "molvae-molecular"

    @field_validator("ranges")
    @classmethod
    def _ranges_are_ordered(cls, value: dict[str, tuple[float | None, float | None]]
                            ) -> dict[str, tuple[float | None, float | None]]:
        for name, (low, high) in value.items():
            if low is not None and high is not None and low > high:
                raise ValueError(f"range of {name!r}: low {low} is above high {high}")
        return value

    @field_validator("rank_by")
    @classmethod
    def _rank_by_has_a_known_direction(cls, value: str) -> str:
        # The column is checked against the candidates' columns at ranking; the syntax fails here,
        # before training. Imported here: selection loads RDKit, which the image flow never needs.
        from molvae.chem.selection import parse_rank_by

        parse_rank_by(value)
        return value

    @model_validator(mode="after")
    def _mode_needs_its_inputs(self) -> MolecularRunConfig:
        if self.mode == "around" and not self.around:
            raise ValueError("mode 'around' needs seed SMILES in 'around'")
        if self.include_seeds and self.mode != "around":
            raise ValueError("'include_seeds' applies to mode 'around' only")
        if self.mode == "condition" and (self.kind != "cvae" or not self.targets):
            raise ValueError("mode 'condition' needs kind 'cvae' and 'targets'")
        if (self.kind == "cvae") != bool(self.condition):
            raise ValueError("'condition' columns go with kind 'cvae', and a cvae needs them")
        return self


class ImageRunConfig(_Strict):
    """One run of the ``image_vae`` flow."""

    source: str = Field("bundled", description="bundled, an IDX folder, an IDX file or a PNG folder.")
    out: Path = Path("runs/images")
    kind: Literal["vae", "cvae", "beta-vae"] = "vae"
    latent_dim: int = Field(20, ge=1)
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(128, ge=1)
    beta: float | None = Field(None, gt=0)
    iwae_k: int = Field(100, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16"] = Field("auto", description=PRECISION_HELP)
    seed: int = 0
    experiment: str = "molvae-images"


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        # A whole-config rule (a model validator) has no field, and pydantic prefixes its text.
        message = item["msg"].removeprefix("Value error, ")
        field = ".".join(str(part) for part in item["loc"])
        lines.append(f"{field}: {message}" if field else message)
    return "; ".join(lines)


def load_config(
    model: type[_Strict], path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> Any:
    """The config from a YAML file (optional) with ``overrides`` (None values ignored) on top.

    Raises
    ------
    ConfigError
        Naming the file and each invalid field, e.g. ``epochs: Input should be greater than or equal to 1``.
    """
    values: dict[str, Any] = {}
    where = "config"
    if path is not None:
        where = str(path)
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except yaml.YAMLError as error:
            raise ConfigError(f"{path} is not valid YAML: {error}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of field: value, got {type(loaded).__name__}")
        values = loaded or {}
    values |= {key: value for key, value in (overrides or {}).items() if value is not None}
    try:
        return model(**values)
    except ValidationError as error:
        raise ConfigError(f"{where}: {_describe(error)}") from None
