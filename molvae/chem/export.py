"""Writing candidates for chemists: the CSV, and beside it an SDF, a PNG grid and the rejects CSV.

Spreadsheets execute a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and some read a
leading tab or carriage return the same way), so free-text cells that start with one are
prefixed with a single quote (OWASP's CSV-injection advice). Numbers are left alone: a
negative cLogP is data, not a formula. SMILES never start with these characters, but ids,
names and seed SMILES come from users' files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from rdkit import Chem
from rdkit.Chem import Draw

from molvae.io import atomic_path, neutralize_cell

GRID_SIZE = 48  # molecules in the PNG grid


def neutralize_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text (object/string) columns are neutralized cell by cell."""
    frame = frame.copy()
    for column in frame.columns:
        if pd.api.types.is_object_dtype(frame[column]) or pd.api.types.is_string_dtype(frame[column]):
            frame[column] = frame[column].map(neutralize_cell)
    return frame


def write_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """A neutralized CSV, written atomically."""
    with atomic_path(path) as tmp:
        neutralize_frame(frame).to_csv(tmp, index=False)
    return Path(path)


def write_sdf(frame: pd.DataFrame, path: str | Path) -> Path:
    """One SDF record per candidate, titled by rank, with every column as a data field."""
    with atomic_path(path) as tmp:
        writer = Chem.SDWriter(str(tmp))
        try:
            for row in frame.itertuples(index=False):
                values = row._asdict()
                mol = Chem.MolFromSmiles(values["smiles"])
                mol.SetProp("_Name", f"rank {values['rank']}")
                for name, value in values.items():
                    if not pd.isna(value):
                        mol.SetProp(name, str(value))
                writer.write(mol)
        finally:
            writer.close()
    return Path(path)


def draw_grid(smiles: list[str], legends: list[str], path: str | Path, per_row: int = 6) -> Path:
    """An RDKit grid image of molecules with a legend under each, written atomically as PNG."""
    if not smiles:
        raise ValueError("no molecules to draw")
    mols = [Chem.MolFromSmiles(s) for s in smiles]
    image = Draw.MolsToGridImage(mols, molsPerRow=min(per_row, len(mols)), subImgSize=(260, 220),
                                 legends=legends)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return Path(path)


def write_grid(frame: pd.DataFrame, path: str | Path, n: int = GRID_SIZE, per_row: int = 6) -> Path:
    """An RDKit grid of the top ``n`` candidates; each legend gives rank, QED and decode similarity."""
    top = frame.head(n)
    if top.empty:
        raise ValueError("no candidates to draw: every candidate was filtered out (see the rejects file)")
    legends = [f"#{r.rank}  QED {r.qed:.2f}  sim {r.decode_similarity:.2f}" for r in top.itertuples()]
    return draw_grid(top["smiles"].tolist(), legends, path, per_row)


@dataclass(frozen=True)
class ExportPaths:
    """Where one export went."""

    csv: Path
    sdf: Path
    png: Path
    rejects: Path


def export_candidates(candidates: pd.DataFrame, rejects: pd.DataFrame, csv_path: str | Path) -> ExportPaths:
    """Write the CSV and, beside it, the SDF, the PNG grid and the rejects file."""
    csv_path = Path(csv_path)
    paths = ExportPaths(csv_path, csv_path.with_suffix(".sdf"), csv_path.with_suffix(".png"),
                        csv_path.with_name(f"{csv_path.stem}.rejects.csv"))
    write_csv(candidates, paths.csv)
    write_sdf(candidates, paths.sdf)
    if len(candidates):
        write_grid(candidates, paths.png)
    else:
        paths.png.unlink(missing_ok=True)  # an old grid would show candidates this run did not keep
    write_csv(rejects, paths.rejects)
    return paths
