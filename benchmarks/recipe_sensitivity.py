"""Why a model trained on deepwave records loses accuracy on records made by the exact OpenFWI recipe.

Uses the folders written by ``benchmarks/openfwi_backend_check.py``: the same
fresh maps simulated by the recipe port (``OUT/{dataset}``) and by deepwave
(``OUT/deepwave/{dataset}``). For each model it reports the test MAE (m/s) on

- ``port`` and ``deepwave`` records of the same maps;
- deepwave records plus Gaussian noise with the standard deviation of the
  port-minus-deepwave difference (is it the size of the difference?);
- deepwave records plus the difference of *another* map (is it a coherent,
  map-independent pattern?);
- deepwave records with the port's records in one shot only, and in one time
  window only (where does it act?).

All on the normalised inputs the model sees (log compression, min-max, the
model's time stride).

    python benchmarks/recipe_sensitivity.py --dataset style-a --data openfwi-check/ \\
        --model runs/pretrained/epic_lite/style-a --model runs/zoo/inversionnet_lite/style-a \\
        --json benchmarks/results/recipe_port/style-a.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from epic_zoo.data.openfwi import OpenFWIFolder
from epic_zoo.data.transforms import VELOCITY_SCALE_MS
from epic_zoo.evaluation import as_dataset
from epic_zoo.models import load_model


def tensors(
    folder: Path, dataset: str, model: torch.nn.Module
) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised ``(seismic, velocity)`` of an OpenFWI-layout folder, at the model's stride."""
    data = as_dataset(OpenFWIFolder(folder, dataset, split=None), model)
    items = [data[i] for i in range(len(data))]
    return (
        torch.stack([torch.as_tensor(i["seismic"]) for i in items]),
        torch.stack([torch.as_tensor(i["velocity"]) for i in items]),
    )


def probe(spec: str, dataset: str, root: Path, windows: int = 5) -> dict:
    model = load_model(spec)
    model = (model[0] if isinstance(model, tuple) else model).eval()
    port, truth = tensors(root / dataset, dataset, model)
    deep, _ = tensors(root / "deepwave" / dataset, dataset, model)
    diff = port - deep
    gen = torch.Generator().manual_seed(0)

    def mae(x: torch.Tensor) -> float:
        with torch.inference_mode():
            return float((model(x) - truth).abs().mean()) * VELOCITY_SCALE_MS

    shift = torch.roll(torch.arange(len(diff)), 1)  # every map gets its neighbour's difference
    row = {
        "model": "/".join(Path(spec).parts[-3:]) if Path(spec).exists() else spec,
        "maps": len(truth),
        "port_mae_ms": mae(port),
        "deepwave_mae_ms": mae(deep),
        "input_difference_rel_l2": float(diff.norm() / deep.norm()),
        "gaussian_same_std_mae_ms": mae(deep + torch.randn(deep.shape, generator=gen) * diff.std()),
        "other_maps_difference_mae_ms": mae(deep + diff[shift]),
        "port_in_one_shot_mae_ms": [],
        "port_in_one_window_mae_ms": [],
    }
    for shot in range(deep.shape[1]):
        x = deep.clone()
        x[:, shot] = port[:, shot]
        row["port_in_one_shot_mae_ms"].append(mae(x))
    edges = torch.linspace(0, deep.shape[2], windows + 1).round().long().tolist()
    stride_ms = 1000 // deep.shape[2]
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        x = deep.clone()
        x[:, :, a:b] = port[:, :, a:b]
        row["port_in_one_window_mae_ms"].append(
            {"from_ms": a * stride_ms, "to_ms": b * stride_ms, "mae_ms": mae(x)}
        )
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--data", type=Path, required=True, help="the backend check's --out folder")
    parser.add_argument("--model", action="append", required=True, help="model spec (repeatable)")
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = [probe(spec, args.dataset, args.data) for spec in args.model]
    for row in rows:
        print(json.dumps(row))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"dataset": args.dataset, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
