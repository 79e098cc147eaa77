from pathlib import Path

import pytest
import yaml

from pipelines.config import BUNDLED_TRAIN, ConfigError, MolecularRunConfig, load_config


def test_defaults_run_on_the_bundled_data():
    config = load_config(MolecularRunConfig)
    assert config.train == BUNDLED_TRAIN and config.train.is_file() and config.library.is_file()
    assert config.mode == "prior" and config.n_candidates == 100


def test_yaml_values_and_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("epochs: 3\nn_candidates: 7\nranges: {mw: [200, 450], clogp: [null, 3]}\n"
                    "precision: bf16\n")
    config = load_config(MolecularRunConfig, path, {"epochs": 5, "seed": None})
    assert config.epochs == 5 and config.n_candidates == 7 and config.seed == 0
    assert config.precision == "bf16" and load_config(MolecularRunConfig).precision == "auto"
    assert config.ranges == {"mw": (200.0, 450.0), "clogp": (None, 3.0)}  # null: an open end
    with pytest.raises(ConfigError, match=r"^config: ranges: range of 'mw': low 450.0 is above high 200.0$"):
        load_config(MolecularRunConfig, None, {"ranges": {"mw": [450, 200]}})


def test_errors_name_the_file_and_each_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("epochs: 0\nkind: gan\nbatchsize: 3\nprecision: fp16\n")
    with pytest.raises(ConfigError) as error:
        load_config(MolecularRunConfig, path)
    message = str(error.value)
    assert message.startswith(str(path))
    assert "epochs: Input should be greater than or equal to 1" in message
    assert "kind: Input should be 'vae', 'cvae' or 'beta-vae'" in message
    assert "batchsize: Extra inputs are not permitted" in message
    assert "precision: Input should be 'auto', 'fp32' or 'bf16'" in message


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        ({"mode": "around"}, "mode 'around' needs seed SMILES"),
        ({"include_seeds": True}, "'include_seeds' applies to mode 'around' only"),
        ({"mode": "condition", "targets": {"qed": 0.9}}, "needs kind 'cvae'"),
        ({"kind": "cvae"}, "a cvae needs them"),
    ],
)
def test_modes_need_their_inputs(values, needle):
    with pytest.raises(ConfigError, match=needle) as error:
        load_config(MolecularRunConfig, None, values)
    assert str(error.value).startswith("config: ") and "config: config" not in str(error.value)
    assert "Value error" not in str(error.value)


def test_rank_by_direction_is_checked_before_the_run():
    assert load_config(MolecularRunConfig, None, {"rank_by": "sa_score:asc"}).rank_by == "sa_score:asc"
    with pytest.raises(ConfigError, match=r"rank_by: .*direction 'up' for column 'qed'"):
        load_config(MolecularRunConfig, None, {"rank_by": "qed:up"})


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(MolecularRunConfig, tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(MolecularRunConfig, Path(tmp_path / "list.yaml"))


def test_the_readme_example_config_validates():
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    block = readme[readme.index("  ```yaml") + len("  ```yaml"):]
    block = block[:block.index("  ```")]
    config = MolecularRunConfig(**yaml.safe_load("\n".join(line[2:] for line in block.splitlines())))
    assert config.kind == "cvae" and config.prior == "fitted" and config.density_components == 1
