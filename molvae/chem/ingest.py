"""``molvae ingest``: messy molecule files → a standardized, deduplicated dataset.

Every input row ends up in exactly one place: ``molecules.parquet`` (accepted), or
``rejects.csv`` with its reason (rejected, or a duplicate of an earlier row), and the
manifest's counts always satisfy ``rows_read = accepted + duplicates + rejected``.

Records stream through in chunks; chunks are standardized and fingerprinted on worker
processes and written in input order, so memory stays flat and the result does not
depend on the number of workers. The dataset is built in a temporary folder that is
renamed into place at the end, so a killed ingest never leaves half a dataset.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import time
from array import array
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import rdkit

from molvae import __version__
from molvae.chem.fingerprints import FingerprintSettings, morgan_packed
from molvae.chem.molecules import DUPLICATE, MoleculeError, StandardizeSettings, standardize
from molvae.chem.properties import PROPERTY_LEVELS, compute_properties_frame, property_columns
from molvae.chem.readers import RawRecord, iter_records
from molvae.data import (
    FINGERPRINTS_FILE,
    MANIFEST_FILE,
    MOLECULES_FILE,
    REJECTS_FILE,
    files_intact,
    molecule_schema,
    read_manifest,
)
from molvae.download import sha256_file
from molvae.io import neutralize_cell, write_json
from molvae.parallel import ordered_map

# Bump when a change makes the same inputs and settings produce a different dataset.
INGEST_FORMAT = 1
REJECT_COLUMNS = ("source", "row", "record_id", "input", "reason")


@dataclass(frozen=True)
class IngestSettings:
    """Everything that decides the content of a dataset (recorded in its manifest)."""

    smiles_col: str | None = None
    id_col: str | None = None
    properties: str = "basic"
    standardize: StandardizeSettings = field(default_factory=StandardizeSettings)
    fingerprints: FingerprintSettings = field(default_factory=FingerprintSettings)

    def __post_init__(self) -> None:
        if self.properties not in PROPERTY_LEVELS:
            raise ValueError(f"properties must be one of {PROPERTY_LEVELS}, got {self.properties!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ChunkResult:
    """What a worker returns for one chunk: positions refer to the chunk's records."""

    accepted: list[int]
    smiles: list[str]
    inchikeys: list[str]
    fingerprints: np.ndarray
    properties: dict[str, list]
    rejected: list[tuple[int, str]]


def process_chunk(records: list[RawRecord], settings: IngestSettings) -> ChunkResult:
    """Standardize, fingerprint and describe one chunk (runs on a worker process)."""
    accepted, mols, smiles, keys, rejected = [], [], [], [], []
    for position, record in enumerate(records):
        if record.error is not None:
            rejected.append((position, record.error))
            continue
        try:
            molecule = standardize(record.text, record.kind, settings.standardize)
        except MoleculeError as error:
            rejected.append((position, str(error)))
            continue
        accepted.append(position)
        mols.append(molecule.mol)
        smiles.append(molecule.smiles)
        keys.append(molecule.inchikey)
    fps = morgan_packed(mols, settings.fingerprints)
    props = compute_properties_frame(mols, settings.properties).to_dict("list") if mols else {}
    return ChunkResult(accepted, smiles, keys, fps, props, rejected)


def _reason_kind(reason: str) -> str:
    return reason.split(":", 1)[0]


class _DatasetWriter:
    """Streams accepted molecules, fingerprints and rejects into a folder, hashing as it goes."""

    def __init__(self, folder: Path, settings: IngestSettings, n_inputs: int) -> None:
        self.folder = folder
        self.columns = property_columns(settings.properties)
        self.schema = molecule_schema(self.columns)
        self.parquet = pq.ParquetWriter(folder / MOLECULES_FILE, self.schema)
        self.fp_raw = (folder / "fingerprints.bin").open("wb")
        self.n_bytes = settings.fingerprints.n_bytes
        self.rejects = (folder / REJECTS_FILE).open("w", newline="", encoding="utf-8")
        self.reject_writer = csv.writer(self.rejects)
        self.reject_writer.writerow(REJECT_COLUMNS)
        self.content = hashlib.sha256()
        self.seen: dict[str, int] = {}  # InChIKey → accepted index
        # Where each accepted molecule came from, as compact arrays (12 B a row, not ~120 B of
        # tuples): MOSES has 1.6M of them.
        self.first_input = array("i")
        self.first_row = array("q")
        self.counts = [Counter() for _ in range(n_inputs)]

    def write_chunk(self, input_index: int, source: str, records: list[RawRecord],
                    result: ChunkResult) -> None:
        counts = self.counts[input_index]
        counts["rows_read"] += len(records)
        outcome: dict[int, str] = dict(result.rejected)
        keep: list[int] = []  # indices into result.accepted
        for j, position in enumerate(result.accepted):
            key = result.inchikeys[j]
            first = self.seen.get(key)
            if first is None:
                self.seen[key] = len(self.first_row)
                self.first_input.append(input_index)
                self.first_row.append(records[position].row)
                keep.append(j)
            else:
                first_input, first_row = self.first_input[first], self.first_row[first]
                where = "" if first_input == input_index else f" of input {first_input + 1}"
                outcome[position] = f"{DUPLICATE} of row {first_row}{where} (InChIKey {key})"
        for position in sorted(outcome):
            record, reason = records[position], outcome[position]
            kind = _reason_kind(reason)
            counts["duplicates" if kind.startswith(DUPLICATE) else "rejected"] += 1
            if not kind.startswith(DUPLICATE):
                counts[f"reason:{kind}"] += 1
            # The input text and id are the user's own: a spreadsheet must not run them as formulas.
            self.reject_writer.writerow([neutralize_cell(value) for value in
                                         (source, record.row, record.record_id or "", record.text, reason)])
        counts["accepted"] += len(keep)
        if keep:
            self._write_accepted(source, records, result, keep)

    def _write_accepted(self, source: str, records: list[RawRecord], result: ChunkResult,
                        keep: list[int]) -> None:
        start = len(self.first_row) - len(keep)
        smiles = [result.smiles[j] for j in keep]
        table = {
            "id": np.arange(start, start + len(keep), dtype=np.int64),
            "smiles": smiles,
            "inchikey": [result.inchikeys[j] for j in keep],
            "source": [source] * len(keep),
            "row": [records[result.accepted[j]].row for j in keep],
            "record_id": [records[result.accepted[j]].record_id for j in keep],
        }
        for column in self.columns:
            values = result.properties[column]
            table[column] = [values[j] for j in keep]
        self.parquet.write_table(pa.Table.from_pydict(table, schema=self.schema))
        fps = np.ascontiguousarray(result.fingerprints[keep])
        self.fp_raw.write(fps.tobytes())
        for s in smiles:
            self.content.update(s.encode() + b"\n")
        self.content.update(fps.tobytes())

    def close_files(self) -> None:
        """Close the open files (again is harmless): also on a failed ingest, before its folder goes."""
        if self.parquet.is_open:
            self.parquet.close()
        self.rejects.close()
        self.fp_raw.close()

    def close(self) -> int:
        """Finish every file; returns the number of molecules."""
        self.close_files()
        n = len(self.first_row)
        raw = self.folder / "fingerprints.bin"
        # .npy needs the row count in its header, known only now: header, then the raw rows.
        with (self.folder / FINGERPRINTS_FILE).open("wb") as out, raw.open("rb") as rows:
            np.lib.format.write_array_header_1_0(
                out, {"descr": "|u1", "fortran_order": False, "shape": (n, self.n_bytes)})
            shutil.copyfileobj(rows, out, length=16 << 20)
        raw.unlink()
        return n


def _stale_temporaries(out_dir: Path) -> list[Path]:
    """Temporary folders left by killed ingests (a live ingest's folder is not stale)."""
    stale = []
    for folder in out_dir.parent.glob(f".{out_dir.name}.ingest-*"):
        pid = folder.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or not _alive(int(pid)):
            stale.append(folder)
    return sorted(stale)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _check_replaceable(out_dir: Path) -> None:
    """Refuse to replace a folder that is not a molvae dataset (``-o ~/project`` must not wipe it)."""
    if not out_dir.exists() or (out_dir.is_dir() and not any(out_dir.iterdir())):
        return
    try:
        is_dataset = read_manifest(out_dir).get("format") == "molvae-dataset"
    except (FileNotFoundError, ValueError, NotADirectoryError):
        is_dataset = False
    if not is_dataset:
        raise ValueError(f"{out_dir} exists and is not a molvae dataset; choose a new or empty folder")


def _up_to_date(out_dir: Path, identity: dict[str, Any]) -> dict[str, Any] | None:
    if not (out_dir / MANIFEST_FILE).is_file():
        return None
    manifest = read_manifest(out_dir)
    return manifest if manifest.get("identity") == identity and files_intact(out_dir, manifest) else None


def ingest(inputs: Sequence[str | Path], out_dir: str | Path, settings: IngestSettings | None = None,
           *, workers: int | None = None, chunk_size: int = 5_000, force: bool = False,
           progress: Any = None) -> dict[str, Any]:
    """Ingest ``inputs`` into the dataset folder ``out_dir`` and return its manifest.

    Parameters
    ----------
    inputs
        CSV/TSV/.smi/SDF/Parquet files, optionally gzipped.
    settings
        Column choice, property level, standardization and fingerprint settings.
    workers
        Processes for standardization (default: all CPUs); results do not depend on it.
    force
        Rebuild even when the folder already holds this exact ingest (same input
        checksums, settings and versions), which is otherwise a no-op.
    progress
        Optional callable receiving the number of rows just processed.
    """
    settings = settings or IngestSettings()
    out_dir = Path(out_dir)
    paths = [Path(p) for p in inputs]
    if not paths:
        raise ValueError("no input files")
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"input not found: {path}")
    identity = {"inputs": [{"name": p.name, "sha256": sha256_file(p)} for p in paths],
                "settings": settings.to_dict(), "ingest_format": INGEST_FORMAT,
                "rdkit_version": rdkit.__version__}
    identity = json.loads(json.dumps(identity))  # as the manifest will hold it (tuples → lists)
    if not force and (manifest := _up_to_date(out_dir, identity)) is not None:
        return manifest | {"up_to_date": True}
    _check_replaceable(out_dir)
    for stale in _stale_temporaries(out_dir):
        shutil.rmtree(stale, ignore_errors=True)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.ingest-{os.getpid()}"
    tmp.mkdir()
    started = time.perf_counter()
    writer = None
    try:
        writer = _DatasetWriter(tmp, settings, len(paths))
        jobs = _jobs(paths, settings, chunk_size)
        work = partial(_process_job, settings=settings)
        for (input_index, records), result in ordered_map(work, jobs, workers):
            writer.write_chunk(input_index, str(paths[input_index]), records, result)
            if progress is not None:
                progress(len(records))
        n_molecules = writer.close()
        manifest = _manifest(paths, identity, writer, n_molecules, time.perf_counter() - started)
        write_json(tmp / MANIFEST_FILE, manifest)
        _swap_into_place(tmp, out_dir)
    finally:
        if writer is not None:
            writer.close_files()
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def _jobs(paths: list[Path], settings: IngestSettings, chunk_size: int
          ) -> Iterator[tuple[int, list[RawRecord]]]:
    for input_index, path in enumerate(paths):
        for records in iter_records(path, smiles_col=settings.smiles_col, id_col=settings.id_col,
                                    chunk_size=chunk_size):
            yield input_index, records


def _process_job(job: tuple[int, list[RawRecord]], settings: IngestSettings) -> ChunkResult:
    return process_chunk(job[1], settings)


def _swap_into_place(tmp: Path, out_dir: Path) -> None:
    """Replace ``out_dir`` by ``tmp`` with renames, so readers see the old or the new dataset."""
    old = None
    if out_dir.exists():
        old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
        out_dir.rename(old)
    tmp.rename(out_dir)
    if old is not None:
        shutil.rmtree(old)


def _manifest(paths: list[Path], identity: dict[str, Any], writer: _DatasetWriter, n_molecules: int,
              seconds: float) -> dict[str, Any]:
    per_input = []
    total: Counter = Counter()
    for path, counts, ident in zip(paths, writer.counts, identity["inputs"], strict=True):
        entry = _counts(counts)
        per_input.append({"path": str(path), "sha256": ident["sha256"], **entry})
        total.update(counts)
    totals = _counts(total)
    if totals["rows_read"] != totals["accepted"] + totals["duplicates"] + totals["rejected"]:
        raise AssertionError(f"ingest lost records: {totals}")  # a bug, never bad input
    if totals["accepted"] != n_molecules:
        raise AssertionError(f"{n_molecules} molecules written for {totals['accepted']} accepted")
    folder = writer.folder
    return {
        "format": "molvae-dataset", "format_version": 1, "molvae_version": __version__,
        "identity": identity, "counts": totals, "inputs": per_input,
        "columns": ["id", "smiles", "inchikey", "source", "row", "record_id", *writer.columns],
        "fingerprints": {**identity["settings"]["fingerprints"], "dtype": "uint8",
                         "packing": "numpy.packbits, most significant bit first"},
        "files": {name: sha256_file(folder / name)
                  for name in (MOLECULES_FILE, FINGERPRINTS_FILE, REJECTS_FILE)},
        "content_hash": writer.content.hexdigest(), "seconds": round(seconds, 3),
        "rows_per_second": round(totals["rows_read"] / seconds, 1) if seconds else None,
    }


def _counts(counts: Counter) -> dict[str, Any]:
    reasons = {k.removeprefix("reason:"): v for k, v in sorted(counts.items()) if k.startswith("reason:")}
    return {"rows_read": counts["rows_read"], "accepted": counts["accepted"],
            "duplicates": counts["duplicates"], "rejected": counts["rejected"],
            "rejected_by_reason": reasons}
