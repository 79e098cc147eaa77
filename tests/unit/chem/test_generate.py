import numpy as np
import pytest
import torch

from molvae.chem.fingerprints import FingerprintSettings, morgan_packed
from molvae.chem.generate import GenerationRequest, generate_candidates
from molvae.chem.hubness import DEFAULT_HUB_NEIGHBOURS
from molvae.chem.molecules import standardize
from molvae.chem.search import FingerprintLibrary
from molvae.errors import GenerationShortfall
from molvae.latent_density import GaussianMixture
from molvae.models import VAE
from molvae.models.molecular import ConditionScaler, molecular_config

SETTINGS = FingerprintSettings(n_bits=256)


def library(n=300, seed=0):
    bits = (np.random.default_rng(seed).random((n, 256)) < 0.1).astype(np.uint8)
    return FingerprintLibrary.from_packed(np.packbits(bits, axis=1), ids=[f"id{i}" for i in range(n)],
                                          smiles=["C" * (i % 7 + 1) for i in range(n)], settings=SETTINGS)


def model(kind="vae", conditions=None):
    """An untrained model made to decode like a trained one: mostly-off bits that depend on z.
    (At its random initialization every probability is near 0.5 and soft Tanimoto picks the
    densest rows, whatever the draw: hubness.)"""
    torch.manual_seed(0)
    vae = VAE(molecular_config(kind, SETTINGS, latent_dim=4, hidden_dims=(16,), conditions=conditions))
    with torch.no_grad():
        vae.decoder[-1].weight.mul_(20.0)
        vae.decoder[-1].bias.fill_(-3.0)
    return vae


def test_exactly_n_unique_candidates_ranked_by_decode_similarity():
    request = GenerationRequest(n=8, batch_size=32)
    frame, stats = generate_candidates(model(), library(), request, device="cpu")
    assert len(frame) == 8 and frame["library_index"].is_unique
    assert frame["rank"].tolist() == list(range(1, 9))
    assert (np.diff(frame["decode_similarity"]) <= 0).all()
    assert stats["candidates"] == 8 and stats["raw_samples"] >= 8
    assert 0 < stats["unique_fraction"] <= 1 and stats["raw_unique"] >= 8
    assert stats["prior"] == "standard"  # this model has no fitted density


def test_the_hubness_correction_spreads_a_rounds_draws_over_more_molecules():
    corrected = GenerationRequest(n=8, batch_size=64)
    _, stats = generate_candidates(model(), library(), corrected, device="cpu")
    _, nearest = generate_candidates(model(), library(), GenerationRequest(n=8, batch_size=64, hubness=0),
                                     device="cpu")
    assert stats["hubness"] == DEFAULT_HUB_NEIGHBOURS and nearest["hubness"] == 0
    assert stats["raw_samples"] == nearest["raw_samples"] == 64  # one round each
    assert stats["raw_unique"] > 1.5 * nearest["raw_unique"]


def test_each_rounds_hub_terms_count_the_earlier_rounds_hits(monkeypatch):
    import molvae.chem.generate as generate

    earlier_draws = []
    real = generate.kept_hits

    def spy(hits, guide, avoid, hubness, earlier):
        earlier_draws.append(0 if earlier is None else len(earlier.indices))
        return real(hits, guide, avoid, hubness, earlier)

    monkeypatch.setattr(generate, "kept_hits", spy)
    _, stats = generate_candidates(model(), library(), GenerationRequest(n=40, batch_size=8), device="cpu")
    rounds = stats["raw_samples"] // 8
    assert rounds > 2 and earlier_draws == [8 * r for r in range(rounds)]


def test_the_fitted_prior_is_sampled_when_the_model_has_one():
    vae = model()
    vae.latent_density = GaussianMixture(torch.ones(1, dtype=torch.float64),
                                         torch.full((1, 4), 3.0, dtype=torch.float64),
                                         0.01 * torch.eye(4, dtype=torch.float64)[None])
    request = GenerationRequest(n=1, batch_size=64)
    _, stats = generate_candidates(vae, library(), request, device="cpu")
    assert stats["prior"] == "fitted"
    # Draws packed around z = 3 decode to one region of fingerprint space: few distinct hits,
    # unlike N(0, I) draws of the same model.
    _, standard = generate_candidates(vae, library(), GenerationRequest(n=1, batch_size=64, prior="standard"),
                                      device="cpu")
    assert standard["prior"] == "standard" and stats["raw_unique"] < standard["raw_unique"]


def test_shortfall_is_an_error_that_says_why():
    with pytest.raises(GenerationShortfall, match=r"only \d+ unique library molecules after 4 samples"):
        generate_candidates(model(), library(n=20), GenerationRequest(n=20, batch_size=2, max_rounds=2),
                            device="cpu")


def test_too_few_eligible_molecules_fail_before_any_search(monkeypatch):
    lib = library(n=8)
    monkeypatch.setattr(lib, "search", lambda *a, **k: pytest.fail("searched although -n cannot be met"))
    excluded = np.zeros(len(lib), bool)
    excluded[:4] = True
    with pytest.raises(GenerationShortfall, match=r"only 4 of the library's 8 molecules are eligible"):
        generate_candidates(model(), lib, GenerationRequest(n=5), exclude=excluded, device="cpu")


def test_novel_never_returns_excluded_rows():
    lib = library()
    excluded = np.zeros(len(lib), bool)
    excluded[::2] = True
    frame, _ = generate_candidates(model(), lib, GenerationRequest(n=6, batch_size=32), exclude=excluded,
                                   device="cpu")
    assert not excluded[frame["library_index"]].any()


def test_around_leaves_the_seeds_out_unless_asked():
    seed = standardize("CCO")
    lib = library(n=5)
    packed = np.asarray(lib.packed).copy()
    packed[2] = morgan_packed([seed.mol], SETTINGS)[0]
    ids = [*lib.ids_at(range(5))]
    ids[2] = seed.inchikey
    lib = FingerprintLibrary.from_packed(packed, ids=ids, smiles=lib.smiles_at(range(5)), settings=SETTINGS)
    request = GenerationRequest(n=4, mode="around", seeds=["OCC"], spread=1.0, batch_size=64)
    frame, stats = generate_candidates(model(), lib, request, device="cpu")
    assert 2 not in set(frame["library_index"]) and stats["seeds_excluded"] == 1
    with pytest.raises(GenerationShortfall, match="only 4 of the library's 5 molecules are eligible"):
        generate_candidates(model(), lib, GenerationRequest(n=5, mode="around", seeds=["OCC"]), device="cpu")
    request = GenerationRequest(n=5, mode="around", seeds=["OCC"], include_seeds=True, batch_size=64)
    frame, stats = generate_candidates(model(), lib, request, device="cpu")
    assert 2 in set(frame["library_index"]) and stats["seeds_excluded"] == 0


def test_temperature_and_spread_set_how_far_draws_go():
    # At 0 every draw is the same point (the prior's centre, or the seed): decoded to its mean
    # (no Bernoulli sampling), one molecule.
    cold = GenerationRequest(n=1, temperature=0.0, batch_size=32, hubness=0, decode="mean")
    warm = GenerationRequest(n=1, temperature=1.0, batch_size=32, hubness=0, decode="mean")
    assert generate_candidates(model(), library(), cold, device="cpu")[1]["raw_unique"] == 1
    assert generate_candidates(model(), library(), warm, device="cpu")[1]["raw_unique"] > 4
    around = {"n": 1, "mode": "around", "seeds": ["CCO"], "batch_size": 32, "hubness": 0, "decode": "mean"}
    still, moving = GenerationRequest(**around, spread=0.0), GenerationRequest(**around, spread=1.0)
    assert generate_candidates(model(), library(), still, device="cpu")[1]["raw_unique"] == 1
    assert generate_candidates(model(), library(), moving, device="cpu")[1]["raw_unique"] > 4


def test_seeds_take_turns_across_rounds():
    # Two draws a round and six seeds: the later rounds must start where the earlier stopped.
    seeds = ["CCO", "CCN", "CCC", "CCCl", "CCS", "CCF"]
    request = GenerationRequest(n=12, mode="around", seeds=seeds, spread=1.0, batch_size=2, max_rounds=200)
    frame, stats = generate_candidates(model(), library(), request, device="cpu")
    assert stats["raw_samples"] >= 12 and set(frame["seed_smiles"]) == {standardize(s).smiles for s in seeds}


def test_modes_and_their_columns(monkeypatch):
    seeds = ["CCO", "c1ccccc1"]
    request = GenerationRequest(n=4, mode="around", seeds=seeds, spread=1.0, batch_size=16)
    frame, _ = generate_candidates(model(), library(), request, device="cpu")
    assert set(frame["seed_smiles"]) <= {"CCO", "c1ccccc1"}
    scaler = ConditionScaler.fit(["mw"], np.array([[100.0], [300.0]]))
    request = GenerationRequest(n=3, mode="condition", targets={"mw": 250.0})
    frame, _ = generate_candidates(model("cvae", scaler), library(), request, device="cpu")
    assert (frame["target_mw"] == 250.0).all()
    with pytest.raises(ValueError, match="needs --condition"):
        generate_candidates(model("cvae", scaler), library(), GenerationRequest(n=3), device="cpu")
    with pytest.raises(ValueError, match="trained with --kind cvae"):
        request = GenerationRequest(n=3, mode="condition", targets={"mw": 1.0})
        generate_candidates(model(), library(), request, device="cpu")
    with pytest.raises(ValueError, match=r"seed 1 \('C1CC\('\): unparseable"):
        generate_candidates(model(), library(), GenerationRequest(n=3, mode="around", seeds=["C1CC("]),
                            device="cpu")


def test_guided_condition_candidates_are_within_tolerance_of_the_target():
    scaler = ConditionScaler.fit(["mw"], np.array([[16.0], [100.0]]))
    lib = library()  # SMILES are methane … heptane, each on 42-43 rows
    request = GenerationRequest(n=5, mode="condition", targets={"mw": 44.1}, guide_k=len(lib), guide_band=0.5,
                                batch_size=16)
    frame, stats = generate_candidates(model("cvae", scaler), lib, request, device="cpu")
    # Each draw sees the whole library; only propane lies within half a tolerance (±12.5 Da).
    assert frame["smiles"].tolist() == ["CCC"] * 5 and stats["guide_k"] == len(lib)
    wide = GenerationRequest(n=5, mode="condition", targets={"mw": 44.1}, guide_k=len(lib), guide_band=1.0,
                             batch_size=16)
    frame, _ = generate_candidates(model("cvae", scaler), lib, wide, device="cpu")
    assert set(frame["smiles"]) <= {"CC", "CCC", "CCCC"} and set(frame["smiles"]) != {"CCC"}
    plain = GenerationRequest(n=5, mode="condition", targets={"mw": 44.1}, guide_k=1, batch_size=16)
    unguided, _ = generate_candidates(model("cvae", scaler), lib, plain, device="cpu")
    assert not set(unguided["smiles"]) <= {"CC", "CCC", "CCCC"}


def test_targets_may_name_some_conditions_and_the_model_draws_the_rest():
    scaler = ConditionScaler.fit(["mw", "clogp"], np.array([[16.0, 0.0], [100.0, 3.0]]))  # stds 42, 1.5
    vae = model("cvae", scaler)
    # (z, mw, clogp), normalized: clogp follows mw closely in the "training data".
    cov = torch.eye(6, dtype=torch.float64)
    cov[4, 5] = cov[5, 4] = 0.9
    f64 = torch.float64
    vae.latent_density = GaussianMixture(torch.ones(1, dtype=f64), torch.zeros(1, 6, dtype=f64),
                                         torch.linalg.cholesky(cov)[None])
    seen = []
    decode = vae.decode
    vae.decode = lambda z, condition=None: seen.append(condition) or decode(z, condition)
    lib = library()
    request = GenerationRequest(n=5, mode="condition", targets={"mw": 100.0}, guide_k=len(lib),
                                guide_band=0.5, batch_size=256)
    frame, stats = generate_candidates(vae, lib, request, device="cpu")
    conditions = torch.cat(seen)
    assert torch.allclose(conditions[:, 0], torch.tensor(1.0))  # mw = 100 is one std above the mean
    assert conditions[:, 1].mean().item() == pytest.approx(0.9, abs=0.1) and conditions[:, 1].std() > 0.2
    assert stats["free_conditions"] == ["clogp"] and stats["targets_far_from_training"] == {}
    # Only the named target is guided and reported: within ±12.5 Da of 100 lies heptane (100.2) alone.
    assert set(frame["smiles"]) == {"CCCCCCC"} and "target_clogp" not in frame
    assert (frame["target_mw"] == 100.0).all()
    # 300 Da is (300 − 58) / 42 = 5.8 training standard deviations out: it runs, and is named.
    request = GenerationRequest(n=2, mode="condition", targets={"mw": 300.0}, batch_size=64)
    assert generate_candidates(vae, lib, request, device="cpu")[1]["targets_far_from_training"] == {"mw": 5.8}


def test_the_guide_defaults_to_the_setting_for_the_librarys_size_and_says_which():
    scaler = ConditionScaler.fit(["mw"], np.array([[16.0], [100.0]]))
    request = GenerationRequest(n=3, mode="condition", targets={"mw": 58.0}, batch_size=64)
    _, stats = generate_candidates(model("cvae", scaler), library(), request, device="cpu")
    assert (stats["guide_k"], stats["guide_band"]) == (24, 0.85)  # 300 molecules: the small-library setting
    _, stats = generate_candidates(model(), library(), GenerationRequest(n=3, batch_size=64), device="cpu")
    assert (stats["guide_k"], stats["guide_band"]) == (1, None)  # no targets, no guide


def test_a_property_without_a_default_tolerance_is_guided_by_its_training_std():
    scaler = ConditionScaler.fit(["heavy_atoms"], np.array([[1.0], [9.0]]))  # std 4 → tolerance 1
    request = GenerationRequest(n=4, mode="condition", targets={"heavy_atoms": 3.0}, guide_k=300,
                                batch_size=16)
    frame, _ = generate_candidates(model("cvae", scaler), library(), request, device="cpu")
    assert set(frame["smiles"]) == {"CCC"}  # 3 heavy atoms, ± half a tolerance


def test_request_validation():
    with pytest.raises(ValueError, match="mode must be"):
        GenerationRequest(n=1, mode="dream")
    with pytest.raises(ValueError, match="needs seed"):
        GenerationRequest(n=1, mode="around")
    with pytest.raises(ValueError, match=">= 1"):
        GenerationRequest(n=0)
    conditioned = GenerationRequest(n=1, mode="condition", targets={"mw": 1.0})
    assert conditioned.guide_k is None and conditioned.guide_settings(1_000) == (24, 0.85)
    assert conditioned.guide_settings(2_000_000) == (48, 0.5)
    assert conditioned.guide_settings(10) == (24, 0.85)
    assert GenerationRequest(n=1, mode="condition", targets={"mw": 1.0}, guide_k=8).guide_settings(10)[0] == 8
    assert GenerationRequest(n=1).guide_k == 1
    with pytest.raises(ValueError, match=r"guidance \(guide_k > 1\) needs targets"):
        GenerationRequest(n=1, guide_k=4)
    for bad in ({"guide_k": 0}, {"guide_band": -0.5}, {"hubness": -1}):
        with pytest.raises(ValueError, match="guide_k must be >= 1, guide_band and hubness >= 0"):
            GenerationRequest(n=1, mode="condition", targets={"mw": 1.0}, **bad)
    assert GenerationRequest(n=1).hubness == DEFAULT_HUB_NEIGHBOURS > 0
    with pytest.raises(ValueError, match="include_seeds applies to mode 'around'"):
        GenerationRequest(n=1, include_seeds=True)
    with pytest.raises(ValueError, match=r"targets \(--condition\) go with mode 'condition', not 'around'"):
        GenerationRequest(n=1, mode="around", seeds=["CCO"], targets={"qed": 0.9})


def test_interpolation_path_lists_each_molecule_once_and_covers_every_step():
    from molvae.chem.generate import interpolation_path

    path = interpolation_path(model(), library(), "CCO", "c1ccccc1O", steps=12, device="cpu")
    assert path["position"].tolist() == list(range(1, len(path) + 1))
    assert path["library_index"].is_unique and path["steps"].sum() == 12
    assert path["first_step"].iloc[0] == 0 and path["last_step"].max() == 11
    assert (np.diff(path["first_step"]) > 0).all() and (path["last_step"] >= path["first_step"]).all()
    assert path["smiles"].notna().all()
    with pytest.raises(ValueError, match="start molecule 'C1CC\\('"):
        interpolation_path(model(), library(), "C1CC(", "CCO", device="cpu")


def test_a_path_that_comes_back_to_a_molecule_lists_it_once(monkeypatch):
    from molvae.chem.generate import interpolation_path
    from molvae.chem.search import SearchResult

    searched = {}

    def search(self, queries, k, *, exclude=None, **options):
        searched["exclude"] = exclude
        return SearchResult(np.array([[0], [1], [0], [2]]), np.array([[0.9], [0.8], [0.7], [0.6]]))

    monkeypatch.setattr(FingerprintLibrary, "search", search)
    mask = np.zeros(300, dtype=bool)
    path = interpolation_path(model(), library(), "CCO", "c1ccccc1O", steps=4, device="cpu", exclude=mask)
    assert searched["exclude"] is mask
    assert path["library_index"].tolist() == [0, 1, 2] and path["position"].tolist() == [1, 2, 3]
    assert path["first_step"].tolist() == [0, 1, 3] and path["last_step"].tolist() == [2, 1, 3]
    assert path["steps"].tolist() == [2, 1, 1] and path["decode_similarity"].tolist() == [0.9, 0.8, 0.6]
    assert path["smiles"].tolist() == library().smiles_at(np.array([0, 1, 2]))


def test_an_excluded_molecule_is_never_on_the_path():
    from molvae.chem.generate import interpolation_path

    free = interpolation_path(model(), library(), "CCO", "c1ccccc1O", steps=12, device="cpu")
    mask = np.zeros(300, dtype=bool)
    mask[free["library_index"].to_numpy()] = True
    path = interpolation_path(model(), library(), "CCO", "c1ccccc1O", steps=12, device="cpu", exclude=mask)
    assert not mask[path["library_index"].to_numpy()].any() and path["steps"].sum() == 12
    with pytest.raises(ValueError, match="every library molecule is excluded"):
        interpolation_path(model(), library(), "CCO", "c1ccccc1O", device="cpu", exclude=np.ones(300, bool))
