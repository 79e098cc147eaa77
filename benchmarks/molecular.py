"""Molecular VAE benchmarks on MOSES; prints markdown tables, writes JSON.

Sections (run one at a time):

- ``speed``: training samples/s side by side in one run at the seed's architecture
  (2048→256→(μ, log σ²) of 128, 128→256→2048, batch 128, Adam 1e-3), one epoch each
  over ``--train-rows`` MOSES train molecules (default 100,000): the seed's loop (a torch
  DataLoader over a dense float32 tensor of unpacked bits, sigmoid then
  ``F.binary_cross_entropy``, plus KL), the same loop without the DataLoader, our Trainer on
  packed fingerprints (progress bar off and on), a bare loop on packed fingerprints (the
  floor) and the default model (hidden 1024,512, latent 128, batch 128), extrapolated to one
  epoch over all 1,584,399 MOSES train molecules. The machine is shared, so the epoch is cut
  into ``--rounds`` slices and the loops take turns on each; the fastest slice gives the
  quiet-machine rate. Then the per-step profile (below).
- ``profile``: median milliseconds per step in each phase (fetch, forward + loss, backward,
  optimizer, bookkeeping) of the seed's step and the Trainer's, interleaved step by step;
  also run at the end of ``speed``.
- ``sweep``: β and size grid. Each model is trained with ``train_molecular_model`` on a
  MOSES train sample (default 200,000 rows, 5% held out for validation) and evaluated on
  2,000 MOSES test molecules encoded → decoded → searched in a library of all MOSES test
  molecules (top-1, top-10 and mean decode similarity for both soft similarities), and on
  2,000 prior draws at temperature 1 decoded with k = 1 in that library (median decode
  similarity, unique fraction of raw hits before de-duplication). A time budget
  (``--budget-min``) drops the configurations that would not fit; dropped ones are listed.
- ``density``: prior draws of a sweep model from N(0, I) against latent densities fitted
  to its training molecules (``--components``), decoded into all MOSES test molecules.
- ``hubness``: the same model's fitted-density draws decoded with and without the hubness
  correction, over CSLS neighbour counts (``--neighbours``) and candidate counts.
- ``guide``: property-guided decoding of a cvae over a grid of guide k, band and hubness
  correction (``molecular_guide.py``).
- ``properties``: how well a sweep model's latent means predict QED, cLogP and MW of
  held-out training molecules (R² of a linear map and of a small MLP).

Datasets are ingested once (``--properties none``) into ``benchmarks/results/cache``:
a seeded random sample of MOSES train (a smaller sample is a subset of a larger one) and
all of MOSES test, plus its fingerprint library. Sweep models are kept in
``benchmarks/results/models/molecular-sweep`` and reused by a re-run with the same
settings. Results go to ``benchmarks/results/molecular_<section>.json``. Usage::

    .venv/bin/python benchmarks/molecular.py speed --train-rows 100000 --rounds 25
    .venv/bin/python benchmarks/molecular.py profile --steps 300
    .venv/bin/python benchmarks/molecular.py sweep --train-rows 200000 --epochs 4 --budget-min 40
    .venv/bin/python benchmarks/molecular.py sweep --train-rows 100000 --batch-size 128 --betas 0.01,0.002
    .venv/bin/python benchmarks/molecular.py density --prior-samples 10000 --components 1,4,16
    .venv/bin/python benchmarks/molecular.py hubness --prior-samples 10000 --neighbours 0,1,3,5,10
    .venv/bin/python benchmarks/molecular.py guide --guide-ks 16,32 --guide-bands 0.5,0.75,1 --neighbours 0,3
    .venv/bin/python benchmarks/molecular.py properties

The sections live in ``molecular_speed.py`` (speed, profile), ``molecular_sweep.py`` and
``molecular_density.py``;
``molecular_data.py`` holds the cached MOSES sample, test set and library they share.

On a machine shared with other torch processes, prefix ``OMP_WAIT_POLICY=PASSIVE``: with
spinning OpenMP threads on both sides, steps here ran 4-15× slower.
"""


from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rdkit import RDLogger

from molvae.io import write_json

sys.path.insert(0, str(Path(__file__).resolve().parent))
from molecular_data import RESULTS, ROOT
from molecular_density import DEFAULT_MODEL, density, hubness, latent_properties
from molecular_guide import DEFAULT_CVAE, guide_grid
from molecular_speed import profile, speed
from molecular_sweep import model_folder, sweep, sweep_results

SECTIONS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "speed": speed, "profile": profile, "sweep": sweep, "density": density, "hubness": hubness,
    "guide": guide_grid, "properties": latent_properties}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("section", choices=list(SECTIONS))
    parser.add_argument("--moses-dir", type=Path, default=ROOT.parent / "shared" / "datasets" / "moses")
    parser.add_argument("--train-rows", type=int, default=None,
                        help="MOSES train rows sampled (default: speed and guide 100,000, sweep 200,000).")
    parser.add_argument("--rounds", type=int, default=25, help="speed: interleaved slices of the epoch.")
    parser.add_argument("--steps", type=int, default=300, help="profile: training steps profiled.")
    parser.add_argument("--epochs", type=int, default=4, help="sweep: epochs per configuration.")
    parser.add_argument("--eval-rows", type=int, default=2000, help="sweep: test molecules to recover.")
    parser.add_argument("--prior-samples", type=int, default=2000, help="sweep: prior draws.")
    parser.add_argument("--budget-min", type=float, default=40.0,
                        help="sweep: skip configurations that would end past this many minutes.")
    parser.add_argument("--batch-size", type=int, default=512, help="sweep: training batch size.")
    parser.add_argument("--betas", default="1,0.05,0.01,0.002", help="sweep: β values (1 warms up).")
    parser.add_argument("--latent-dims", default="",
                        help="sweep: latent sizes to run at the default hidden layers and the best β.")
    parser.add_argument("--no-large", action="store_true", help="sweep: skip the larger model.")
    parser.add_argument("--prior", choices=["standard", "fitted"], default="standard",
                        help="sweep: draw the prior samples from N(0, I) or the fitted latent density.")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                        help="sweep: training precision (molvae train --precision).")
    parser.add_argument("--capacities", default="",
                        help="sweep: KL capacities C (nats) to run at the default size (Burgess et al.).")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="density: the sweep model's name.")
    parser.add_argument("--components", default="1,4,16",
                        help="density: mixture sizes to fit; the first is saved with the model.")
    parser.add_argument("--library", choices=["test", "train"], default="test",
                        help="density, hubness: decode into all MOSES test or all MOSES train molecules; "
                             "guide: into MOSES train without the cvae's training sample.")
    parser.add_argument("--neighbours", default="0,1,3,5,10",
                        help="hubness, guide: CSLS neighbour counts (0: the nearest molecule).")
    parser.add_argument("--cvae", type=Path, default=DEFAULT_CVAE, help="guide: the cvae's folder.")
    parser.add_argument("--guide-ks", default="16,32", help="guide: candidates per draw.")
    parser.add_argument("--guide-bands", default="0.5,0.75,1", help="guide: bands, in tolerances.")
    parser.add_argument("--per-target", type=int, default=1000, help="guide: draws per target.")
    parser.add_argument("--density-components", default="",
                        help="guide: refit the cvae's latent density with each of these Gaussian counts.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    RDLogger.DisableLog("rdApp.*")
    started = time.perf_counter()
    result = SECTIONS[args.section](args)
    out = RESULTS / f"molecular_{args.section}.json"
    if args.section == "sweep":
        out = sweep_results(args.batch_size, args.train_rows or 200_000, args.latent_dims, args.capacities,
                            args.precision, args.prior)
    elif args.section in ("density", "hubness"):
        other = "" if args.model == DEFAULT_MODEL else "_" + model_folder(args.model).name  # other models
        out = RESULTS / f"molecular_{args.section}_{args.library}{other}.json"
    elif args.section == "guide":
        grid = f"k{args.guide_ks}_band{args.guide_bands}_hubness{args.neighbours}".replace(",", "-")
        if args.density_components:
            grid += "_density" + args.density_components.replace(",", "-")
        if args.library == "train":
            grid += "_train-library"
        seed = f"_seed{args.seed}" if args.seed else ""  # other seeds: held-out checks of a setting
        out = RESULTS / f"molecular_guide_{args.cvae.name}_{grid}{seed}.json"
    write_json(out, {"result": result, "seconds": time.perf_counter() - started,
                "command": " ".join(sys.argv[1:])})


if __name__ == "__main__":
    main()

