import gzip
import itertools
import json
from pathlib import Path

import pandas as pd
from rdkit import Chem
from typer.testing import CliRunner

from molvae.cli.main import app
from molvae.data import MoleculeDataset

EXPORT_COLUMNS = ("rank", "smiles", "inchikey", "library_id", "decode_similarity", "nearest_train_smiles",
                  "nearest_train_similarity", "novel", "qed", "sa_score", "clogp", "mw", "tpsa", "hbd", "hba",
                  "rotb", "lipinski_violations", "veber_pass", "alerts", "scaffold", "ad_score",
                  "ad_percentile", "score", "model", "run_id")

BUNDLED_TRAIN = Path(__file__).resolve().parents[2] / "data" / "moses" / "train.csv.gz"


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_ingest_train_build_reconstruct_generate(tmp_path):
    with gzip.open(BUNDLED_TRAIN, "rt") as handle:
        lines = list(itertools.islice(handle, 401))  # the last 100: a library beyond the training set
    (tmp_path / "mols.csv").write_text("".join(lines[:301]))
    assert run("ingest", tmp_path / "mols.csv", "-o", tmp_path / "ds", "--workers", "1",
               "--properties", "none", "--bits", "512").exit_code == 0
    trained = run("train", tmp_path / "ds", "-o", tmp_path / "m", "--epochs", "40", "--batch-size", "32",
                  "--latent-dim", "16", "--hidden", "128", "--beta", "0.01", "--lr", "3e-3",
                  "--patience", "0", "--val-fraction", "0.1", "--no-progress", "--device", "cpu")
    assert trained.exit_code == 0, trained.output
    assert run("library", "build", tmp_path / "ds", "-o", tmp_path / "lib").exit_code == 0
    queries = [line.strip() for line in lines[1:21]] + ["C1CC(", "=1+2"]
    (tmp_path / "q.smi").write_text("\n".join(queries) + "\n")
    result = run("reconstruct", tmp_path / "m", "--library", tmp_path / "lib", "--smiles",
                 tmp_path / "q.smi", "-o", tmp_path / "out.csv", "--k", "5", "--device", "cpu")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "out.csv", keep_default_na=False)
    assert len(table) == 20 * 5 + 2
    # The library's molecules are named by their place in the ingested file (it has no id column).
    assert table["library_id"].iloc[:100].str.fullmatch(r"mols\.csv:\d+").all()
    assert table["input_row"].tolist()[-2:] == [21, 22] and table["reason"].iloc[-2].startswith("unparseable")
    # Unparseable input is echoed as it came, so a spreadsheet formula is made inert.
    assert table["input_smiles"].iloc[-1] == "'=1+2" and table["reason"].iloc[-1].startswith("unparseable")
    summary = json.loads(result.output[result.output.index("{"):])
    # A low-β model memorizes 300 molecules: most come back from their own decoded fingerprint.
    assert summary["inputs"] == 20 and summary["top5"] >= 0.6 and summary["top1"] >= 0.4

    evaluated = run("evaluate", tmp_path / "m", "--library", tmp_path / "lib", "--train", tmp_path / "ds",
                    "--test", tmp_path / "ds", "-o", tmp_path / "metrics.json", "--recovery-n", "40",
                    "--n-samples", "200", "--k", "5", "--hubness", "5", "--device", "cpu")
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["hubness"] == 5
    assert metrics["recovery_in_library_fraction"] == 1.0 and metrics["recovery_inputs"] == 40
    assert metrics["recovery_top1"] >= 0.4 and metrics["recovery_top5_soft_tanimoto_sq"] >= 0.4
    # Every hit is a training molecule here, and a random draw of the library is all distinct.
    assert metrics["novelty"] == 0.0 and metrics["random_novelty"] == 0.0
    assert 0 < metrics["raw_unique_fraction"] <= 1 and 0 <= metrics["median_decode_similarity"] <= 1
    assert {"intdiv1", "snn", "frag", "w1_qed", "random_snn"} <= set(metrics)

    generated = run("generate", tmp_path / "m", "--library", tmp_path / "lib", "-n", "5", "-o",
                    tmp_path / "cand.csv", "--temperature", "1.5", "--device", "cpu",
                    "--train", tmp_path / "ds",
                    "--run-id", "r1")
    assert generated.exit_code == 0, generated.output
    candidates = pd.read_csv(tmp_path / "cand.csv")
    assert len(candidates) == 5 and candidates["library_id"].str.fullmatch(r"mols\.csv:\d+").all()
    assert candidates["library_id"].is_unique
    assert set(EXPORT_COLUMNS) <= set(candidates.columns) and (candidates["run_id"] == "r1").all()
    # The library is the training set: each candidate is its own nearest training molecule.
    assert not candidates["novel"].any() and (candidates["nearest_train_similarity"] == 1.0).all()
    assert (candidates["smiles"] == candidates["nearest_train_smiles"]).all()
    assert (tmp_path / "cand.sdf").read_text().count("$$$$") == 5 and (tmp_path / "cand.png").stat().st_size
    # The library is the training set itself: --novel leaves nothing eligible, and says so.
    novel = run("generate", tmp_path / "m", "--library", tmp_path / "lib", "-n", "5", "-o",
                tmp_path / "n.csv", "--novel", "--train", tmp_path / "ds", "--max-rounds", "2",
                "--device", "cpu")
    assert novel.exit_code == 1 and "only 0 of the library's" in novel.output
    assert not (tmp_path / "n.csv").exists()
    bad = run("generate", tmp_path / "m", "--library", tmp_path / "lib", "-o", tmp_path / "b.csv",
              "--condition", "qed:0.9")
    assert bad.exit_code == 1 and "expected name=value" in bad.output

    # A pentapeptide: large and dense with bits drug-like training molecules rarely set. (A tiny
    # odd molecule would not do: few on-bits cost little under a Bernoulli likelihood.)
    odd = "CC(C)C[C@H](NC(=O)[C@@H](Cc1ccccc1)NC(=O)[C@H](CC(N)=O)NC(=O)CNC(=O)[C@H](CO)N)C(=O)O"
    (tmp_path / "a.smi").write_text("\n".join([*queries[:10], odd, "@SUM(A1)"]) + "\n")
    scored = run("anomaly", tmp_path / "m", "--smiles", tmp_path / "a.smi", "-o", tmp_path / "a.csv",
                 "--device", "cpu")
    assert scored.exit_code == 0, scored.output
    scores = pd.read_csv(tmp_path / "a.csv", keep_default_na=False)
    assert scores["input_row"].tolist() == list(range(1, 13))
    assert scores["input_smiles"].iloc[11] == "'@SUM(A1)"  # neutralized, as reconstruct's
    assert scores["reason"].iloc[11].startswith("unparseable")
    assert scores["reason"].iloc[:10].tolist() == [""] * 10
    train_part = pd.to_numeric(scores["anomaly_percentile"].iloc[:10])
    assert ((train_part >= 0) & (train_part <= 100)).all()
    # Molecules the model was trained on sit inside its domain; the peptide does not.
    assert float(scores["anomaly_score"].iloc[10]) > pd.to_numeric(scores["anomaly_score"].iloc[:10]).max()
    assert float(scores["anomaly_percentile"].iloc[10]) == 100.0
    assert scores["domain"].iloc[10] == "high (unlike training)"

    # SDF input is read as mol blocks: the same molecules score and rank as from SMILES.
    blocks = [Chem.MolToMolBlock(Chem.MolFromSmiles(s)) for s in queries[:3]]
    blocks.append("broken\n\n\nnot a mol block\n")
    (tmp_path / "q.sdf").write_text("".join(f"{block}$$$$\n" for block in blocks))
    from_sdf = run("anomaly", tmp_path / "m", "--smiles", tmp_path / "q.sdf", "-o", tmp_path / "s.csv",
                   "--device", "cpu")
    assert from_sdf.exit_code == 0, from_sdf.output
    sdf_scores = pd.read_csv(tmp_path / "s.csv", keep_default_na=False)
    assert sdf_scores["reason"].iloc[:3].tolist() == [""] * 3 and sdf_scores["reason"].iloc[3] != ""
    assert sdf_scores["inchikey"].iloc[:3].tolist() == scores["inchikey"].iloc[:3].tolist()
    ranked = run("reconstruct", tmp_path / "m", "--library", tmp_path / "lib", "--smiles", tmp_path / "q.sdf",
                 "-o", tmp_path / "sdf_out.csv", "--k", "5", "--device", "cpu")
    assert ranked.exit_code == 0, ranked.output
    sdf_table = pd.read_csv(tmp_path / "sdf_out.csv", keep_default_na=False)
    assert sdf_table["input_row"].tolist() == [1] * 5 + [2] * 5 + [3] * 5 + [4]
    assert sdf_table["smiles"].iloc[:15].tolist() == table["smiles"].iloc[:15].tolist()

    path = run("interpolate", tmp_path / "m", queries[0], queries[1], "--library", tmp_path / "lib",
               "--steps", "8", "-o", tmp_path / "path.csv", "--device", "cpu")
    assert path.exit_code == 0, path.output
    steps = pd.read_csv(tmp_path / "path.csv")
    assert (tmp_path / "path.png").read_bytes()[:4] == b"\x89PNG"
    assert steps["first_step"].iloc[0] == 0 and steps["last_step"].max() == 7
    assert steps["library_index"].is_unique and steps["steps"].sum() == 8
    assert steps["library_id"].str.fullmatch(r"mols\.csv:\d+").all()

    # A library of the training set and 100 more molecules: --novel keeps the path off the training set.
    (tmp_path / "all.csv").write_text("".join(lines))
    assert run("ingest", tmp_path / "all.csv", "-o", tmp_path / "ds-all", "--workers", "1",
               "--properties", "none", "--bits", "512").exit_code == 0
    assert run("library", "build", tmp_path / "ds-all", "-o", tmp_path / "lib-all").exit_code == 0
    train_smiles = set(MoleculeDataset(tmp_path / "ds").molecules()["smiles"])
    paths = {}
    for name, options in (("free", []), ("novel", ["--novel", "--train", tmp_path / "ds"])):
        result = run("interpolate", tmp_path / "m", queries[0], queries[1], "--library", tmp_path / "lib-all",
                     "--steps", "8", "-o", tmp_path / f"{name}.csv", "--device", "cpu", *options)
        assert result.exit_code == 0, result.output
        paths[name] = pd.read_csv(tmp_path / f"{name}.csv")
    assert set(paths["free"]["smiles"]) & train_smiles  # the model memorized its ends
    assert not set(paths["novel"]["smiles"]) & train_smiles and paths["novel"]["steps"].sum() == 8
    lone = run("interpolate", tmp_path / "m", queries[0], queries[1], "--library", tmp_path / "lib-all",
               "--novel")
    assert lone.exit_code == 1 and "--novel needs --train" in lone.output
    idle = run("interpolate", tmp_path / "m", queries[0], queries[1], "--library", tmp_path / "lib-all",
               "--train", tmp_path / "ds")
    assert idle.exit_code == 1 and "--train is only used with --novel" in idle.output
