"""SDF records: mol blocks kept as text, titles as ids, every record counted."""

from rdkit import Chem

from tests.unit.chem.reading import mol_block, read_all


def test_sdf_records_keep_mol_blocks_and_titles(tmp_path):
    first, second = mol_block("CCO", "ethanol"), mol_block("c1ccccc1")
    path = tmp_path / "mols.sdf"
    path.write_text(f"{first}>  <ID>\nE1\n\n$$$$\n{second}$$$$\n")

    records = read_all(path)

    assert [(r.row, r.kind, r.record_id, r.error) for r in records] == [
        (1, "molblock", "ethanol", None),
        (2, "molblock", None, None),
    ]
    assert records[0].text == f"{first}>  <ID>\nE1\n\n"
    assert Chem.MolToSmiles(Chem.MolFromMolBlock(records[0].text)) == "CCO"
    assert [r.record_id for r in read_all(path, id_col="ID")] == ["E1", None]


def test_sdf_empty_and_unreadable_records_are_counted(tmp_path):
    good = mol_block("CCO", "good")
    truncated = "\n".join(mol_block("CCN", "cut").splitlines()[:5]) + "\n"
    path = tmp_path / "mols.sdf"
    path.write_text(f"{good}$$$$\n\n$$$$\n{truncated}$$$$\n{good}")

    records = read_all(path)

    assert [(r.row, r.record_id) for r in records] == [(1, "good"), (2, None), (3, "cut"), (4, "good")]
    assert records[0].error is None
    assert records[1].error == "empty"
    first_line = good.count("\n") + 4  # after the good record, its $$$$, a blank line and $$$$
    assert records[2].error == (
        f"unreadable SDF record: no 'M  END' line (record starts at line {first_line})"
    )
    # The last record has no $$$$ after it but is complete.
    assert records[3].error is None


def test_sdf_trailing_blank_lines_are_not_a_record(tmp_path):
    path = tmp_path / "mols.sdf"
    path.write_text(f"{mol_block('C')}$$$$\n\n\n")

    assert len(read_all(path)) == 1


def test_sdf_non_utf8_bytes_reject_only_in_the_connection_table(tmp_path):
    block = mol_block("CC", "x").encode()
    legacy_names = block.replace(b"x", b"caf\xe9", 1) + b">  <name>\ncaf\xe9\n\n"
    bad_atom = block.replace(b" C   0", b" \xff   0", 1)
    path = tmp_path / "mols.sdf"
    path.write_bytes(b"$$$$\n".join([block, legacy_names, bad_atom, b""]))

    records = read_all(path)

    assert [(r.record_id, r.error) for r in records] == [
        ("x", None),
        ("caf\\xe9", None),
        ("x", "not valid UTF-8"),
    ]
    assert "caf\\xe9" in records[1].text
    assert "\\xff" in records[2].text


