"""Experiment: does teaching a model the recipe's boundary artefact close the recipe-port gap?

Step 1 (``residuals``): simulate N training maps of a dataset (the last
shard of its training split) with the exact recipe port and with deepwave,
and keep the difference of the normalised records at stride 4
(``port - deepwave``, shape ``[N, 5, 250, 70]``): the recipe's boundary
artefact as the model sees it.

Step 2 (``finetune``): fine-tune a trained EPIC on its own training split for
a few epochs (AdamW lr 3e-4, wd 1e-4, cosine, batch 16, L1), adding a random
residual (scaled by U(0.5, 1.5)) to each sample with probability ``p``; ``p=0``
is the control (the same fine-tuning without the artefact). Before and after,
it reports the MAE (m/s) on the test split and on the backend check's port
and deepwave records of the same fresh maps (``benchmarks/openfwi_backend_check.py``).

    python benchmarks/recipe_residual_finetune.py residuals --dataset style-a --num 48 --out res.npy
    python benchmarks/recipe_residual_finetune.py finetune --dataset style-a \\
        --model runs/pretrained/epic_lite/style-a --residuals res.npy --p 0.5 --epochs 4 \\
        --check openfwi-check/

Data come from ``$EPIC_ZOO_DATA/lite2k-seed0/{dataset}``. The experiment that
led to the training option ``data.recipe_residuals`` (same templates, same
augmentation, :mod:`epic_zoo.data.residuals`); the pretrained zoo uses that
option from the start instead of fine-tuning.
"""

from __future__ import annotations

import argparse
import glob
import math
import os
import sys
import time

import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader

from epic_zoo.data.datamodule import FWIDataset
from epic_zoo.data.openfwi import OpenFWIFolder
from epic_zoo.data.residuals import add_recipe_residuals, recipe_residuals
from epic_zoo.data.store import H5Split
from epic_zoo.evaluation import evaluate_model
from epic_zoo.models import load_model


def data_dir(dataset: str) -> str:
    return os.path.join(os.environ.get("EPIC_ZOO_DATA", "."), "lite2k-seed0", dataset)


def residuals(dataset: str, n: int, out: str) -> None:
    shard = sorted(glob.glob(f"{data_dir(dataset)}/train/*.h5"))[-1]  # last shard: maps 1900-1999
    vel = h5py.File(shard)["velocity"][:n, 0].astype(np.float32)
    t = time.time()
    r = recipe_residuals(vel, dataset, time_stride=4)  # the library's templates (port - deepwave)
    print("port and deepwave", time.time() - t, flush=True)
    np.save(out, r)
    print(dataset, r.shape, float(np.abs(r).mean()))


def finetune(d: str, run: str, res_path: str, p: float, epochs: int, check: str) -> None:
    torch.manual_seed(0)
    m = load_model(run)
    m = m[0] if isinstance(m, tuple) else m
    res = torch.from_numpy(np.load(res_path))
    train = FWIDataset(H5Split(f"{data_dir(d)}/train"), time_stride=4)
    loader = DataLoader(train, batch_size=16, shuffle=True, drop_last=True)
    steps = epochs * len(loader)
    opt = torch.optim.AdamW(m.parameters(), lr=3e-4, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))
    )

    def report(tag: str) -> None:
        out = {}
        for name, data in (
            ("test", FWIDataset(H5Split(f"{data_dir(d)}/test"), time_stride=4)),
            ("port", OpenFWIFolder(f"{check}/{d}", d, split=None)),
            ("deepwave", OpenFWIFolder(f"{check}/deepwave/{d}", d, split=None)),
        ):
            out[name] = round(evaluate_model(m, data)["mae_ms"], 1)
        print(tag, out, flush=True)

    report("before")
    t = time.time()
    for e in range(epochs):
        m.train()
        for batch in loader:
            x, y = batch["seismic"], batch["velocity"]
            x = add_recipe_residuals(x, res, p, scale=(0.5, 1.5))  # the recipe's augmentation
            loss = (m(x) - y).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        print("epoch", e, "loss", float(loss.detach()), round(time.time() - t), "s", flush=True)
    report(f"after p={p}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("residuals")
    r.add_argument("--dataset", required=True)
    r.add_argument("--num", type=int, default=48)
    r.add_argument("--out", required=True)
    f = sub.add_parser("finetune")
    f.add_argument("--dataset", required=True)
    f.add_argument("--model", required=True)
    f.add_argument("--residuals", required=True)
    f.add_argument("--p", type=float, default=0.5)
    f.add_argument("--epochs", type=int, default=4)
    f.add_argument("--check", required=True, help="the backend check's --out folder")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.cmd == "residuals":
        residuals(args.dataset, args.num, args.out)
    else:
        finetune(args.dataset, args.model, args.residuals, args.p, args.epochs, args.check)
    return 0


if __name__ == "__main__":
    sys.exit(main())
