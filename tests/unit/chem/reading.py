"""Helpers shared by the reader tests."""

from rdkit import Chem

from molvae.chem.readers import RawRecord, iter_records


def read_all(path, **kwargs) -> list[RawRecord]:
    return [record for chunk in iter_records(path, **kwargs) for record in chunk]


def mol_block(smiles: str, title: str = "") -> str:
    mol = Chem.MolFromSmiles(smiles)
    mol.SetProp("_Name", title)
    return Chem.MolToMolBlock(mol)
