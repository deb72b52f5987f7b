"""FWIDataset / FWIDataModule on the tiny synthetic store and a fake OpenFWI folder."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
import torch

from epic_zoo.data.datamodule import FWIDataModule, FWIDataset, decimation_factor
from epic_zoo.data.store import DataError, H5Split
from epic_zoo.data.transforms import denormalize_seismic, denormalize_velocity


def test_tiny_synthetic_batches(tiny_data_root, capsys):
    dm = FWIDataModule("FlatVel-A", profile="tiny", root=tiny_data_root, batch_size=4)
    assert dm.dataset_name == "flatvel-a" and dm.time_samples == 250
    assert [len(r) for r in dm.receiver_split] == [14] * 5
    dm.prepare_data()
    assert "generating" not in capsys.readouterr().err  # the session's data are reused
    dm.setup("fit")
    assert (len(dm.train_dataset), len(dm.val_dataset), len(dm.test_dataset)) == (16, 8, 8)
    batch = next(iter(dm.train_dataloader()))
    assert batch["seismic"].shape == (4, 5, 250, 70) and batch["seismic"].dtype == torch.float32
    assert batch["velocity"].shape == (4, 1, 70, 70) and batch["velocity"].dtype == torch.float32
    assert batch["index"].shape == (4,)
    assert batch["velocity"].abs().max() <= 1.0 and batch["seismic"].abs().max() <= 1.5
    assert batch["seismic"].std() > 0.01
    assert dm.hparams["profile"] == "tiny" and dm.hparams["time_stride"] == 4


def test_items_invert_to_stored_values(tiny_dataset_dir):
    source = H5Split(tiny_dataset_dir / "val")
    item = FWIDataset(source)[3]
    seismic, velocity = source[3]
    assert item["index"] == 3
    np.testing.assert_allclose(denormalize_velocity(item["velocity"].numpy()), velocity, rtol=1e-5)
    np.testing.assert_allclose(
        denormalize_seismic(item["seismic"].double().numpy(), "flatvel-a"),
        seismic,
        rtol=1e-4,
        atol=1e-4,
    )


def test_time_decimation_on_load(tiny_dataset_dir, tiny_data_root):
    source = H5Split(tiny_dataset_dir / "test")
    coarse = FWIDataset(source, time_stride=8)
    assert coarse.time_samples == 125
    np.testing.assert_array_equal(
        coarse[0]["seismic"].numpy(), FWIDataset(source)[0]["seismic"].numpy()[:, ::2]
    )
    assert FWIDataModule(profile="tiny", root=tiny_data_root, time_stride=8).time_samples == 125
    with pytest.raises(
        ValueError, match="time_stride=6 is not a multiple of the stored time_stride=4"
    ):
        FWIDataset(source, time_stride=6)
    with pytest.raises(ValueError, match="--time-stride 2"):
        FWIDataModule(profile="tiny", root=tiny_data_root, time_stride=2)
    assert decimation_factor(1, None) == 1 and decimation_factor(2, 10) == 5


def test_limit_and_worker_loading(tiny_data_root):
    dm = FWIDataModule(profile="tiny", root=tiny_data_root, batch_size=3, limit=5, num_workers=1)
    dm.setup()
    assert len(dm.train_dataset) == 5 and len(dm.val_dataset) == 5
    indices = torch.cat([b["index"] for b in dm.val_dataloader()])
    assert indices.tolist() == [0, 1, 2, 3, 4]


def test_missing_data_without_generate_names_the_command(tmp_path):
    dm = FWIDataModule(profile="tiny", root=tmp_path, generate=False)
    dm.prepare_data()
    assert not any(tmp_path.iterdir())
    with pytest.raises(
        DataError,
        match=r"no flatvel-a train data at .*generate=True\) or: python -m epic_zoo.data generate --dataset flatvel-a --num 16 --seed 0 --out .*tiny-seed0 --split train --time-stride 4 --dtype float32 --shard-size 8",
    ):
        dm.setup()


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("seismic", np.nan, r"shard-00000.h5: seismic of sample 2 contains NaN or inf. Delete"),
        (
            "velocity",
            9000.0,
            r"shard-00000.h5: velocity of sample 2 spans .*9000.0 m/s, outside the OpenFWI range",
        ),
    ],
)
def test_bad_values_in_a_stored_sample(tiny_dataset_dir, tmp_path, name, value, message):
    split_dir = tmp_path / "flatvel-a" / "val"
    shutil.copytree(tiny_dataset_dir / "val", split_dir)
    with h5py.File(split_dir / "shard-00000.h5", "r+") as f:  # damage behind the store's back
        data = f[name][2]
        data[0, 10, 10] = value
        f[name][2] = data
    dataset = FWIDataset(H5Split(split_dir))
    dataset[1]
    with pytest.raises(DataError, match=message):
        dataset[2]


def test_openfwi_root_train_val_test(tiny_openfwi_root):
    dm = FWIDataModule(
        "flatvel-a", profile="lite", openfwi_root=tiny_openfwi_root, batch_size=2, val_fraction=0.34
    )
    dm.prepare_data()
    dm.setup()
    train_idx, val_idx = dm.train_dataset.indices, dm.val_dataset.indices
    assert len(train_idx) == 4 and len(val_idx) == 2 and not set(train_idx) & set(val_idx)
    assert len(dm.test_dataset) == 3
    batch = next(iter(dm.test_dataloader()))
    assert batch["seismic"].shape == (2, 5, 250, 70)  # lite's stride 4 applied on load
    again = FWIDataModule(
        "flatvel-a", profile="lite", openfwi_root=tiny_openfwi_root, val_fraction=0.34
    )
    again.setup()
    assert again.val_dataset.indices.tolist() == val_idx.tolist()  # seeded hold-out


def test_openfwi_root_without_test_files(tmp_path, write_openfwi_files):
    write_openfwi_files(tmp_path, "flatvel-a", [(1,)], samples=4)
    dm = FWIDataModule("flatvel-a", profile="tiny", openfwi_root=tmp_path, val_fraction=0.25)
    dm.setup()
    assert len(dm.train_dataset) == 3
    with pytest.raises(DataError, match="no FlatVel-A files of the official test split"):
        dm.test_dataloader()


def test_plot(tiny_dataset_dir):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = FWIDataset(H5Split(tiny_dataset_dir / "test")).plot(0)
    assert len(fig.axes) == 3  # velocity, its colour bar, shot gather
    plt.close(fig)


def test_shard_declaring_2_to_the_40_samples_is_refused_by_the_datamodule(tiny_data_root, tmp_path):
    from epic_zoo.data.store import profile_root

    root = tmp_path / "data"
    shutil.copytree(tiny_data_root, root)
    test_dir = profile_root(root, "tiny", 0) / "flatvel-a" / "test"
    for shard in test_dir.glob("shard-*.h5"):
        shard.unlink()
    forged = test_dir / "shard-00000.h5"
    n = 2**40
    with h5py.File(forged, "w") as f:  # declared, never stored: a few KB on disk
        f.create_dataset("seismic", shape=(n, 5, 250, 70), dtype="f4", chunks=(1, 5, 250, 70))
        f.create_dataset("velocity", shape=(n, 1, 70, 70), dtype="f4", chunks=(1, 1, 70, 70))
        f.attrs.update(dict(complete=True, count=n, total=n, shard_size=n, num_shards=1))
        f.attrs.update(dict(shard_index=0, first_index=0, nt=250, time_stride=4, dtype="float32"))
    dm = FWIDataModule(profile="tiny", root=root, generate=False)
    with pytest.raises(DataError, match="stores data for only part") as err:
        dm.setup()
    assert str(forged) in str(err.value) and "\n" not in str(err.value)
