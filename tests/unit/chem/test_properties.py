import math
import os

import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from rdkit import Chem, RDConfig
from rdkit.Chem import QED, Crippen, Descriptors, Lipinski, rdMolDescriptors
from rdkit.Chem.FilterCatalog import FilterCatalog, FilterCatalogParams
from rdkit.Chem.Scaffolds import MurckoScaffold

from molvae.chem import properties
from molvae.chem.properties import (
    BASIC_COLUMNS,
    FULL_COLUMNS,
    PROPERTY_DTYPES,
    PROPERTY_LEVELS,
    compute_properties,
    compute_properties_frame,
    property_columns,
)

DRUGS = {
    "aspirin": "CC(=O)Oc1ccccc1C(=O)O",
    "caffeine": "Cn1cnc2c1c(=O)n(C)c(=O)n2C",
    "ibuprofen": "CC(C)Cc1ccc(cc1)C(C)C(=O)O",
    "paracetamol": "CC(=O)Nc1ccc(O)cc1",
    "naproxen": "COc1ccc2cc(ccc2c1)C(C)C(=O)O",
    "diclofenac": "OC(=O)Cc1ccccc1Nc1c(Cl)cccc1Cl",
    "metformin": "CN(C)C(=N)N=C(N)N",
    "atenolol": "CC(C)NCC(O)COc1ccc(CC(N)=O)cc1",
    "propranolol": "CC(C)NCC(O)COc1cccc2ccccc12",
    "diazepam": "CN1C(=O)CN=C(c2ccccc2)c2cc(Cl)ccc12",
    "fluoxetine": "CNCCC(Oc1ccc(cc1)C(F)(F)F)c1ccccc1",
    "sertraline": "CN[C@H]1CC[C@@H](c2ccc(Cl)c(Cl)c2)c2ccccc12",
    "omeprazole": "COc1ccc2[nH]c(nc2c1)S(=O)Cc1ncc(C)c(OC)c1C",
    "loratadine": "CCOC(=O)N1CCC(=C2c3ccc(Cl)cc3CCc3cccnc23)CC1",
    "sildenafil": "CCCc1nn(C)c2c1nc([nH]c2=O)-c1cc(ccc1OCC)S(=O)(=O)N1CCN(C)CC1",
    "imatinib": "Cc1ccc(NC(=O)c2ccc(CN3CCN(C)CC3)cc2)cc1Nc1nccc(n1)-c1cccnc1",
    "atorvastatin": "CC(C)c1c(C(=O)Nc2ccccc2)c(-c2ccccc2)c(-c2ccc(F)cc2)n1CC[C@@H](O)C[C@@H](O)CC(=O)O",
    "nicotine": "CN1CCC[C@H]1c1cccnc1",
    "morphine": "CN1CC[C@]23c4c5ccc(O)c4O[C@H]2[C@@H](O)C=C[C@H]3[C@H]1C5",
    "testosterone": "C[C@]12CC[C@H]3[C@@H](CCC4=CC(=O)CC[C@@]34C)[C@@H]1CC[C@@H]2O",
    "cholesterol": "CC(C)CCC[C@@H](C)[C@H]1CC[C@H]2[C@@H]3CC=C4C[C@@H](O)CC[C@]4(C)[C@H]3CC[C@@]21C",
    "penicillin_g": "CC1(C)S[C@@H]2[C@H](NC(=O)Cc3ccccc3)C(=O)N2[C@H]1C(=O)O",
    "ciprofloxacin": "OC(=O)c1cn(C2CC2)c2cc(N3CCNCC3)c(F)cc2c1=O",
    "chloroquine": "CCN(CC)CCCC(C)Nc1ccnc2cc(Cl)ccc12",
    "warfarin": "CC(=O)CC(c1ccccc1)c1c(O)c2ccccc2oc1=O",
    "lidocaine": "CCN(CC)CC(=O)Nc1c(C)cccc1C",
    "haloperidol": "OC1(CCN(CCCC(=O)c2ccc(F)cc2)CC1)c1ccc(Cl)cc1",
    "celecoxib": "Cc1ccc(cc1)-c1cc(nn1-c1ccc(cc1)S(N)(=O)=O)C(F)(F)F",
    "tamoxifen": "CCC(=C(c1ccccc1)c1ccc(OCCN(C)C)cc1)c1ccccc1",
    "metoprolol": "COCCc1ccc(OCC(O)CNC(C)C)cc1",
    "glucose": "OC[C@H]1OC(O)[C@H](O)[C@@H](O)[C@@H]1O",
    "valproic_acid": "CCCC(CCC)C(=O)O",
    "gabapentin": "NCC1(CC(=O)O)CCCCC1",
    "amoxicillin": "CC1(C)S[C@@H]2[C@H](NC(=O)[C@H](N)c3ccc(O)cc3)C(=O)N2[C@H]1C(=O)O",
    "furosemide": "NS(=O)(=O)c1cc(C(=O)O)c(NCc2ccco2)cc1Cl",
    "hydrochlorothiazide": "NS(=O)(=O)c1cc2c(cc1Cl)NCNS2(=O)=O",
    "captopril": "C[C@H](CS)C(=O)N1CCC[C@H]1C(=O)O",
    "levodopa": "N[C@@H](Cc1ccc(O)c(O)c1)C(=O)O",
    "salbutamol": "CC(C)(C)NCC(O)c1ccc(O)c(CO)c1",
    "theophylline": "Cn1c2c(c(=O)n(C)c1=O)[nH]cn2",
    "indomethacin": "COc1ccc2n(C(=O)c3ccc(Cl)cc3)c(C)c(CC(=O)O)c2c1",
    "clopidogrel": "COC(=O)[C@H](c1ccccc1Cl)N1CCc2sccc2C1",
    "zidovudine": "Cc1cn([C@H]2C[C@H](N=[N+]=[N-])[C@@H](CO)O2)c(=O)[nH]c1=O",
    "adamantane": "C1C2CC3CC1CC(C2)C3",
    "benzoquinone": "O=C1C=CC(=O)C=C1",
    "benzylidene_rhodanine": "O=C1NC(=S)SC1=Cc1ccccc1",
    "catechol": "Oc1ccccc1O",
    "nitrobenzene": "O=[N+]([O-])c1ccccc1",
    "sodium_acetate": "CC(=O)[O-].[Na+]",
    "hexadecane": "CCCCCCCCCCCCCCCC",
    "ethanol": "CCO",
    "hexane": "CCCCCC",
}
REFERENCE = ("aspirin", "caffeine", "ibuprofen", "benzylidene_rhodanine", "benzoquinone", "hexane")

NUMERIC = [name for name in FULL_COLUMNS if PROPERTY_DTYPES[name] not in ("string", "bool")]


def mol(smiles: str) -> Chem.Mol:
    parsed = Chem.MolFromSmiles(smiles)
    assert parsed is not None, smiles
    return parsed


@pytest.fixture(scope="module")
def sascorer():
    """The Contrib SA scorer imported the ordinary way, independently of the module under test."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(os.path.join(RDConfig.RDContribDir, "SA_Score"))
        import sascorer

    return sascorer


def reference_alerts(m: Chem.Mol) -> set[str]:
    """Alerts from one catalog per family, so the family prefix does not rely on entry properties."""
    found = set()
    for family, catalog in (("PAINS", "PAINS"), ("Brenk", "BRENK"), ("NIH", "NIH")):
        params = FilterCatalogParams()
        params.AddCatalog(getattr(FilterCatalogParams.FilterCatalogs, catalog))
        found |= {f"{family}:{entry.GetDescription()}" for entry in FilterCatalog(params).GetMatches(m)}
    return found


@pytest.mark.parametrize("name", REFERENCE)
def test_values_equal_rdkit(name, sascorer):
    m = mol(DRUGS[name])
    values = compute_properties(m, "full")
    expected = {
        "mw": Descriptors.MolWt(m),
        "clogp": Crippen.MolLogP(m),
        "tpsa": rdMolDescriptors.CalcTPSA(m),
        "hbd": Lipinski.NumHDonors(m),
        "hba": Lipinski.NumHAcceptors(m),
        "rotb": rdMolDescriptors.CalcNumRotatableBonds(m),
        "rings": m.GetRingInfo().NumRings(),
        "aromatic_rings": rdMolDescriptors.CalcNumAromaticRings(m),
        "fraction_csp3": rdMolDescriptors.CalcFractionCSP3(m),
        "heavy_atoms": m.GetNumHeavyAtoms(),
        "qed": QED.qed(m),
        "sa_score": sascorer.calculateScore(m),
    }
    for column, value in expected.items():
        assert values[column] == pytest.approx(value, rel=1e-12), column
    assert values["scaffold"] == Chem.MolToSmiles(MurckoScaffold.GetScaffoldForMol(m))
    alerts = values["alerts"].split("; ") if values["alerts"] else []
    assert len(alerts) == len(set(alerts)) == values["n_alerts"]
    assert set(alerts) == reference_alerts(m)


def test_known_values_of_reference_molecules():
    aspirin = compute_properties(mol(DRUGS["aspirin"]), "full")
    assert aspirin["mw"] == pytest.approx(180.159, abs=1e-3)
    assert (aspirin["hbd"], aspirin["hba"], aspirin["rings"], aspirin["aromatic_rings"]) == (1, 3, 1, 1)
    assert aspirin["scaffold"] == "c1ccccc1"
    # Murcko scaffolds keep atoms double-bonded to the ring system.
    assert compute_properties(mol(DRUGS["caffeine"]), "full")["scaffold"] == "O=c1[nH]c(=O)c2[nH]cnc2[nH]1"
    assert compute_properties(mol(DRUGS["hexane"]), "full")["scaffold"] == ""


def test_pains_hits_are_named_with_their_catalog():
    rhodanine = compute_properties(mol(DRUGS["benzylidene_rhodanine"]), "full")
    assert rhodanine["alerts"].split("; ") == [
        "PAINS:ene_rhod_A(235)",
        "Brenk:Michael_acceptor_1",
        "Brenk:Thiocarbonyl_group",
        "NIH:rhodanine",
    ]
    assert rhodanine["n_alerts"] == 4
    quinone = compute_properties(mol(DRUGS["benzoquinone"]), ["alerts"])["alerts"]
    assert "PAINS:quinone_A(370)" in quinone.split("; ")


def test_clean_molecule_has_no_alerts():
    assert compute_properties(mol(DRUGS["caffeine"]), ["alerts", "n_alerts"]) == {"alerts": "", "n_alerts": 0}


@pytest.mark.parametrize(
    ("smiles", "crossed", "violations", "veber"),
    [
        ("CCO", set(), 0, True),
        ("CCCCCCCCCCCCC", {"clogp"}, 1, True),  # tridecane: cLogP 5.3; exactly 10 rotatable bonds passes
        ("CCCCCCCCCCCCCC", {"clogp", "rotb"}, 1, False),  # tetradecane: 11 rotatable bonds
        ("OC[C@H]1OC(O)[C@H](O)[C@@H](O)[C@@H]1O", set(), 0, True),  # glucose: exactly 5 donors passes
        ("OCC(O)C(O)C(O)C(O)CO", {"hbd"}, 1, True),  # sorbitol: 6 donors
        ("COCCOCCOCCOCCOCCOCCOCCOCCOCCOCCOC", {"hba", "rotb"}, 1, False),  # 11 ether acceptors
        ("OC(=O)c1c(I)cc(I)c(I)c1I", {"mw"}, 1, True),  # MW 626
        ("O=C(O)c1c(Br)c(Br)c(Br)c(Br)c1Br", {"mw", "clogp"}, 2, True),  # MW 517, cLogP 5.2
        ("O=S(=O)(O)c1cc(S(=O)(=O)O)cc(S(=O)(=O)O)c1", {"tpsa"}, 0, False),  # TPSA 163, 3 rotatable bonds
    ],
)
def test_rule_thresholds(smiles, crossed, violations, veber):
    m = mol(smiles)
    # Check the case really crosses the thresholds it claims, using RDKit directly.
    over = {
        "mw": Descriptors.MolWt(m) > 500,
        "clogp": Crippen.MolLogP(m) > 5,
        "hbd": Lipinski.NumHDonors(m) > 5,
        "hba": Lipinski.NumHAcceptors(m) > 10,
        "rotb": rdMolDescriptors.CalcNumRotatableBonds(m) > 10,
        "tpsa": rdMolDescriptors.CalcTPSA(m) > 140,
    }
    assert {name for name, is_over in over.items() if is_over} == crossed
    values = compute_properties(m, "basic")
    assert values["lipinski_violations"] == violations
    assert values["veber_pass"] is veber


def test_alert_catalog_is_built_once(monkeypatch):
    builds = []

    def counting_catalog(params):
        builds.append(params)
        return FilterCatalog(params)

    monkeypatch.setattr(properties, "FilterCatalog", counting_catalog)
    properties._alert_catalog.cache_clear()
    try:
        compute_properties_frame([mol(s) for s in DRUGS.values()], ["alerts", "n_alerts"])
        for smiles in REFERENCE:
            compute_properties(mol(DRUGS[smiles]), "full")
        assert len(builds) == 1
        assert properties._alert_catalog() is properties._alert_catalog()
    finally:
        properties._alert_catalog.cache_clear()


def test_sa_scorer_is_loaded_once():
    compute_properties(mol(DRUGS["aspirin"]), ["sa_score"])
    scorer = properties._sascorer()
    assert scorer._fscores is not None
    fragment_scores = scorer._fscores
    compute_properties(mol(DRUGS["caffeine"]), ["sa_score"])
    assert properties._sascorer() is scorer
    assert scorer._fscores is fragment_scores


def test_molecule_without_atoms_has_no_sa_score():
    assert math.isnan(compute_properties(Chem.Mol(), ["sa_score"])["sa_score"])


def test_levels_and_column_order():
    assert PROPERTY_LEVELS == ("none", "basic", "full")
    assert property_columns("none") == ()
    assert property_columns("basic") == BASIC_COLUMNS
    assert property_columns("full") == FULL_COLUMNS
    assert FULL_COLUMNS[: len(BASIC_COLUMNS)] == BASIC_COLUMNS
    assert FULL_COLUMNS == (
        "mw", "clogp", "tpsa", "hbd", "hba", "rotb", "rings", "aromatic_rings", "fraction_csp3",
        "heavy_atoms", "lipinski_violations", "veber_pass",
        "qed", "sa_score", "scaffold", "alerts", "n_alerts",
    )
    assert tuple(PROPERTY_DTYPES) == FULL_COLUMNS


@pytest.mark.parametrize("level", PROPERTY_LEVELS)
def test_single_molecule_keys_follow_the_level(level):
    assert tuple(compute_properties(mol(DRUGS["ibuprofen"]), level)) == property_columns(level)


def test_basic_values_are_the_full_values():
    m = mol(DRUGS["atorvastatin"])
    full = compute_properties(m, "full")
    assert compute_properties(m, "basic") == {name: full[name] for name in BASIC_COLUMNS}


def test_frame_columns_dtypes_and_values():
    smiles = list(DRUGS.values())
    frame = compute_properties_frame([mol(s) for s in smiles], "full")
    assert tuple(frame.columns) == FULL_COLUMNS
    assert {name: str(dtype) for name, dtype in frame.dtypes.items()} == PROPERTY_DTYPES
    assert frame.index.equals(pd.RangeIndex(len(smiles)))
    for i in (0, 17, len(smiles) - 1):
        assert frame.iloc[i].to_dict() == pytest.approx(compute_properties(mol(smiles[i]), "full"))


def test_frame_chunks_do_not_change_values(monkeypatch):
    mols = [mol(s) for s in list(DRUGS.values())[:12]]
    whole = compute_properties_frame(mols, "full")
    monkeypatch.setattr(properties, "_CHUNK", 5)
    pd.testing.assert_frame_equal(compute_properties_frame(mols, "full"), whole)


def test_frame_at_level_none_keeps_one_row_per_molecule():
    frame = compute_properties_frame([mol("CCO"), mol("c1ccccc1")], "none")
    assert frame.shape == (2, 0)


def test_empty_batch_gives_typed_empty_frame():
    frame = compute_properties_frame([], "basic")
    assert tuple(frame.columns) == BASIC_COLUMNS
    assert len(frame) == 0
    assert {name: str(dtype) for name, dtype in frame.dtypes.items()} == {
        name: PROPERTY_DTYPES[name] for name in BASIC_COLUMNS
    }


def test_subset_of_columns_by_name():
    mols = [mol(DRUGS[name]) for name in REFERENCE]
    full = compute_properties_frame(mols, "full")
    subset = compute_properties_frame(mols, ["n_alerts", "lipinski_violations", "qed", "n_alerts"])
    assert tuple(subset.columns) == ("n_alerts", "lipinski_violations", "qed")
    pd.testing.assert_frame_equal(subset, full[["n_alerts", "lipinski_violations", "qed"]])
    assert compute_properties(mols[0], ["veber_pass"]) == {"veber_pass": full.loc[0, "veber_pass"]}


@pytest.mark.parametrize("level", ["all", "Basic", "", "qed"])
def test_bad_level_names_the_valid_levels(level):
    with pytest.raises(ValueError, match="none, basic, full"):
        compute_properties(mol("CCO"), level)
    with pytest.raises(ValueError, match="none, basic, full"):
        compute_properties_frame([mol("CCO")], level)
    with pytest.raises(ValueError, match="none, basic, full"):
        property_columns(level)


def test_unknown_column_is_rejected():
    with pytest.raises(ValueError, match="unknown property columns \\['logp'\\]"):
        compute_properties_frame([mol("CCO")], ["mw", "logp"])
    with pytest.raises(ValueError, match="unknown property columns"):
        compute_properties(mol("CCO"), ["_alert_names"])


def test_none_molecule_is_rejected():
    with pytest.raises(ValueError, match="None"):
        compute_properties(None, "basic")
    with pytest.raises(ValueError, match="position 1"):
        compute_properties_frame([mol("CCO"), None], "basic")


def assert_sane(values: dict[str, object]) -> None:
    for name in NUMERIC:
        assert math.isfinite(values[name]), name
    assert 0 < values["qed"] <= 1
    assert 1 <= values["sa_score"] <= 10
    assert values["heavy_atoms"] > 0
    assert values["n_alerts"] == (len(values["alerts"].split("; ")) if values["alerts"] else 0)
    assert isinstance(values["veber_pass"], bool)
    assert isinstance(values["scaffold"], str)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(sorted(DRUGS.values())), min_size=1, max_size=6))
def test_drug_batches_give_finite_values(smiles):
    frame = compute_properties_frame([mol(s) for s in smiles], "full")
    assert len(frame) == len(smiles)
    for row in frame.to_dict("records"):
        assert_sane(row)


# Divalent fragments joined end to end give a chain (ring-closure digits close within each
# fragment, so they can be reused), capped by a group at each end.
LINKERS = [
    "C", "CC", "O", "N", "S", "C(=O)", "C(=O)N", "C=C", "c1ccc(cc1)", "c1ccncc1", "C1CCN(CC1)", "C1CC1",
    "S(=O)(=O)", "C(F)(F)", "N(C)", "c1ccc2ccccc2c1", "C1CCCCC1", "c1cc[nH]c1", "OC(=O)", "[C@H](N)",
]
HEADS = ["C", "F", "Cl", "O", "N", "N#C", "OC(=O)", "O=[N+]([O-])", "FC(F)(F)", "c1ccccc1", "S", "CC(C)(C)"]
TAILS = ["C", "F", "Br", "O", "N", "C#N", "C(=O)O", "[N+](=O)[O-]", "C(F)(F)F", "c1ccccc1", "S", "I"]


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(HEADS), st.lists(st.sampled_from(LINKERS), min_size=1, max_size=8), st.sampled_from(TAILS)
)
def test_fragment_molecules_give_finite_values(head, body, tail):
    m = Chem.MolFromSmiles(head + "".join(body) + tail)
    assume(m is not None)
    assert_sane(compute_properties(m, "full"))
