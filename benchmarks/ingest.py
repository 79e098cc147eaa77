"""Ingest benchmarks: full MOSES, throughput against a plain RDKit loop, dirty-file counts.

Sections (run one, or ``all``):

- ``moses``: the full MOSES train file (1,584,663 SMILES) through ``ingest`` with
  ``--properties none``; wall time, rows/s and peak RSS of the whole process tree.
- ``throughput``: a sample of MOSES train through a plain single-process RDKit loop
  that does the same work (parse, Cleanup, largest fragment, uncharge, canonical SMILES,
  InChIKey, Morgan fingerprint, dedupe, and the properties of the level) and through
  ``ingest``, side by side in one run, at every properties level.
- ``dirty``: a deliberately dirty file (invalid SMILES, salts, charges, duplicates, blank
  lines, rows with a wrong number of columns, non-UTF-8 bytes); the counts must reconcile.

Usage::

    .venv/bin/python benchmarks/ingest.py all --moses ../shared/datasets/moses/train.csv.gz
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rdkit import Chem, RDConfig, RDLogger
from rdkit.Chem import QED, Crippen, Descriptors, Lipinski, rdMolDescriptors
from rdkit.Chem.FilterCatalog import FilterCatalog, FilterCatalogParams
from rdkit.Chem.MolStandardize import rdMolStandardize
from rdkit.Chem.rdFingerprintGenerator import GetMorganGenerator
from rdkit.Chem.Scaffolds import MurckoScaffold

from molvae.chem.ingest import IngestSettings, ingest
from molvae.io import write_json
from molvae.parallel import default_workers

sys.path.insert(0, os.path.join(RDConfig.RDContribDir, "SA_Score"))
import sascorer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PeakTreeRSS, print_table

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DEFAULT_MOSES = ROOT.parent / "shared" / "datasets" / "moses" / "train.csv.gz"


def moses(path: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp, PeakTreeRSS() as memory:
        started = time.perf_counter()
        manifest = ingest([path], Path(tmp) / "moses", IngestSettings(properties="none"))
        seconds = time.perf_counter() - started
    counts = manifest["counts"]
    result = {"rows": counts["rows_read"], "seconds": seconds,
              "rows_per_second": counts["rows_read"] / seconds, "peak_rss_mb": memory.peak / 2**20,
              "counts": counts, "workers": default_workers()}
    print_table("Full MOSES train, --properties none", ["rows", "wall", "rows/s", "peak RSS (tree)"],
                [[f"{result['rows']:,}", f"{seconds:.0f} s", f"{result['rows_per_second']:,.0f}",
                  f"{result['peak_rss_mb']:,.0f} MB"]])
    print(f"counts: {counts}")
    return result


class PlainLoop:
    """The notebook way: one process, every step on every molecule, RDKit calls only."""

    def __init__(self, level: str) -> None:
        self.level = level
        self.largest = rdMolStandardize.LargestFragmentChooser(preferOrganic=True)
        self.uncharger = rdMolStandardize.Uncharger()
        self.fpgen = GetMorganGenerator(radius=2, fpSize=2048)
        params = FilterCatalogParams()
        for catalog in (FilterCatalogParams.FilterCatalogs.PAINS, FilterCatalogParams.FilterCatalogs.BRENK,
                        FilterCatalogParams.FilterCatalogs.NIH):
            params.AddCatalog(catalog)
        self.catalog = FilterCatalog(params)

    def __call__(self, smiles: list[str]) -> int:
        seen, fps = set(), []
        for text in smiles:
            mol = Chem.MolFromSmiles(text)
            if mol is None:
                continue
            mol = self.uncharger.uncharge(self.largest.choose(rdMolStandardize.Cleanup(mol)))
            key = Chem.MolToInchiKey(mol)
            Chem.MolToSmiles(mol)
            if key in seen:
                continue
            seen.add(key)
            fps.append(np.packbits(self.fpgen.GetFingerprintAsNumPy(mol)))
            if self.level in ("basic", "full"):
                self.basic(mol)
            if self.level == "full":
                QED.qed(mol)
                sascorer.calculateScore(mol)
                MurckoScaffold.MurckoScaffoldSmiles(mol=mol)
                [m.GetDescription() for m in self.catalog.GetMatches(mol)]
        return len(seen)

    @staticmethod
    def basic(mol: Chem.Mol) -> None:
        Descriptors.MolWt(mol), Crippen.MolLogP(mol), rdMolDescriptors.CalcTPSA(mol)
        Lipinski.NumHDonors(mol), Lipinski.NumHAcceptors(mol), rdMolDescriptors.CalcNumRotatableBonds(mol)
        rdMolDescriptors.CalcNumRings(mol), rdMolDescriptors.CalcNumAromaticRings(mol)
        rdMolDescriptors.CalcFractionCSP3(mol), mol.GetNumHeavyAtoms()


def _sample(path: Path, n: int) -> list[str]:
    with gzip.open(path, "rt") as handle:
        return [line.strip() for line in itertools.islice(handle, 1, n + 1)]


def throughput(path: Path, n: int = 10_000) -> dict:
    smiles = _sample(path, n)
    rows, result = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "sample.csv"
        source.write_text("SMILES\n" + "\n".join(smiles) + "\n")
        for level in ("none", "basic", "full"):
            started = time.perf_counter()
            plain_unique = PlainLoop(level)(smiles)
            plain = n / (time.perf_counter() - started)
            started = time.perf_counter()
            manifest = ingest([source], Path(tmp) / level, IngestSettings(properties=level), force=True)
            ours = n / (time.perf_counter() - started)
            if manifest["counts"]["accepted"] != plain_unique:
                kept = manifest["counts"]["accepted"]
                raise AssertionError(f"{level}: ingest kept {kept} molecules, the plain loop {plain_unique}")
            result[level] = {"plain_rows_per_s": plain, "ingest_rows_per_s": ours, "ratio": ours / plain}
            rows.append([level, f"{plain:,.0f}", f"{ours:,.0f}", f"{ours / plain:.2f}×"])
    print_table(f"Throughput on {n:,} MOSES SMILES, {default_workers()} workers",
                ["--properties", "plain RDKit loop (rows/s)", "molvae ingest (rows/s)", "ratio"], rows)
    return result


def dirty(path: Path, n: int = 5_000) -> dict:
    rng = np.random.default_rng(0)
    valid = _sample(path, n)
    lines = ["name,SMILES"]
    for i, s in enumerate(valid):
        lines.append(f"m{i},{s}")
        roll = rng.random()
        if roll < 0.05:
            lines.append(f"dup{i},{s}")  # duplicate
        elif roll < 0.08:
            lines.append(f"salt{i},{s}.[Na+].[Cl-]")  # salt → duplicate after standardization
        elif roll < 0.10:
            lines.append(f"bad{i},{s}((")  # unparseable
        elif roll < 0.11:
            lines.append("")  # blank line
        elif roll < 0.12:
            lines.append(f"wrong{i},{s},extra")  # wrong number of columns
        elif roll < 0.13:
            lines.append(f"charged{i},C[NH3+]")  # charged → methylamine, duplicates after the first
        elif roll < 0.14:
            lines.append(f"kek{i},c1cccc1")  # sanitization failure
    data = ("\n".join(lines) + "\n").encode()
    data += b"latin1,C\xe9C\n" + b"bin,\xff\xfe\n"
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "dirty.csv"
        source.write_bytes(data)
        counts = ingest([source], Path(tmp) / "ds", IngestSettings(id_col="name"))["counts"]
        rows_in_file = data.count(b"\n") - 1
    if counts["rows_read"] != rows_in_file or counts["rows_read"] != (
            counts["accepted"] + counts["duplicates"] + counts["rejected"]):
        raise AssertionError(f"counts do not reconcile: {counts} for {rows_in_file} rows")
    print_table("Dirty file: every row accounted for",
                ["rows in file", "accepted", "duplicates", "rejected", "by reason"],
                [[rows_in_file, counts["accepted"], counts["duplicates"], counts["rejected"],
                  ", ".join(f"{k}: {v}" for k, v in counts["rejected_by_reason"].items())]])
    return {"rows_in_file": rows_in_file, "counts": counts}


SECTIONS = {"throughput": throughput, "dirty": dirty, "moses": moses}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("section", choices=[*SECTIONS, "all"])
    parser.add_argument("--moses", type=Path, default=DEFAULT_MOSES, help="MOSES train.csv.gz")
    args = parser.parse_args()
    RDLogger.DisableLog("rdApp.*")  # the plain loop would otherwise print every RDKit warning
    for name in SECTIONS if args.section == "all" else [args.section]:
        result = SECTIONS[name](args.moses)
        write_json(RESULTS / f"ingest_{name}.json", result)


if __name__ == "__main__":
    main()
