"""Bundle export: each part holds only its weights and together they reproduce the model exactly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from epic_zoo.data.contract import InputContract
from epic_zoo.data.transforms import denormalize_velocity, normalize_seismic
from epic_zoo.deploy.export import (
    BundleError,
    CentralDecoder,
    EdgeEncoder,
    export_bundle,
    load_source_model,
    prepare_records,
    read_manifest,
)
from epic_zoo.deploy.records import unpack_records
from epic_zoo.models import create_model
from epic_zoo.models.codec import unpack_payload

from .conftest import NUM_DEVICES, TIME_SAMPLES


def _reference(model: torch.nn.Module, raw: np.ndarray) -> np.ndarray:
    """In-process model output in m/s, ``[70, 70]``."""
    x = normalize_seismic(torch.from_numpy(raw), "flatvel-a")[None]
    with torch.inference_mode():
        return denormalize_velocity(model(x))[0, 0].numpy()


def test_bundle_layout_and_manifest(bundle: Path, small_epic) -> None:
    manifest = read_manifest(bundle)
    assert manifest["mode"] == "latent" and manifest["num_devices"] == NUM_DEVICES
    assert manifest["trained"] is False
    assert manifest["payload_bytes"] == [small_epic.payload_bytes(k) for k in range(NUM_DEVICES)]
    for part in ["central", *(f"devices/device-{k}" for k in range(NUM_DEVICES))]:
        assert read_manifest(bundle / part) == manifest
    encoder_keys = set(small_epic.encoder_module(0).state_dict())
    device_file = load_file(str(bundle / "devices/device-1/encoder.safetensors"))
    assert set(device_file) == encoder_keys  # a device holds its encoder and nothing else
    central_file = load_file(str(bundle / "central/decoder.safetensors"))
    assert not any(k.startswith("encoders.") for k in central_file)
    assert len(central_file) + len(encoder_keys) == len(small_epic.state_dict())


def test_edge_and_central_reproduce_the_model_exactly(bundle: Path, small_epic, records) -> None:
    central = CentralDecoder(bundle / "central")
    edges = [EdgeEncoder(bundle / f"devices/device-{k}", k) for k in range(NUM_DEVICES)]
    for i in range(2):
        raw = records[i]
        x = normalize_seismic(torch.from_numpy(raw), "flatvel-a")[None]
        latents = []
        for k, edge in enumerate(edges):
            part = raw[..., edge.receivers]
            with torch.inference_mode():
                expected = small_epic.encode(k, x[..., torch.as_tensor(edge.receivers)])
            assert torch.equal(edge.encode(part), expected)
            header, latent = unpack_payload(edge.payload(part, sample_id=i))
            assert header["model_version"] == read_manifest(bundle)["model_version"]
            latents.append(latent)
        np.testing.assert_array_equal(central.decode(latents), _reference(small_epic, raw))
        # a lost device: same as the model's decode with the presence mask
        partial = [latents[0], None, latents[2]]
        present = torch.tensor([[True, False, True]])
        with torch.inference_mode():
            masked = small_epic.decode(
                [lat[None] if lat is not None else None for lat in partial], present
            )
        np.testing.assert_array_equal(
            central.decode(partial), denormalize_velocity(masked)[0, 0].numpy()
        )


def test_centralised_baseline_sends_raw_records(tmp_path: Path, records) -> None:
    torch.manual_seed(0)
    model = create_model("inversionnet", time_samples=TIME_SAMPLES, dims=(8, 8, 8, 8, 16)).eval()
    out = export_bundle(
        model,
        tmp_path,
        name="inv",
        contract=InputContract.make("flatvel-a", 4),
        trained=False,
        source="t",
    )
    manifest = read_manifest(out)
    assert manifest["mode"] == "raw" and manifest["files"]["devices"] == []
    parts = []
    for k in range(manifest["num_devices"]):
        edge = EdgeEncoder(out / f"devices/device-{k}", k)
        header, part = unpack_records(edge.payload(records[0][..., edge.receivers], 7))
        assert header["sample_id"] == 7 and part.shape == (5, TIME_SAMPLES, len(edge.receivers))
        parts.append(part)
    central = CentralDecoder(out / "central")
    np.testing.assert_array_equal(central.decode(parts), _reference(model, records[0]))


def test_tampered_weights_are_refused(bundle: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "device-0"
    shutil.copytree(bundle / "devices/device-0", copy)
    weights = copy / "encoder.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="sha256"):
        EdgeEncoder(copy, 0)
    with pytest.raises(BundleError, match="device 5"):
        EdgeEncoder(bundle, 5)
    with pytest.raises(BundleError, match="no manifest.json"):
        CentralDecoder(tmp_path)


def test_models_with_device_state_outside_the_encoder_are_refused(tmp_path: Path) -> None:
    model = create_model("federated", time_samples=TIME_SAMPLES, dims=(4, 4, 4, 4, 4))
    with pytest.raises(BundleError, match="encoder_input"):
        export_bundle(
            model,
            tmp_path,
            name="f",
            contract=InputContract.make("flatvel-a", 4),
            trained=False,
            source="t",
        )


def test_load_source_model_untrained_and_unknown() -> None:
    model, info = load_source_model("epic", untrained=InputContract.make("curvevel-a", 4, 5))
    assert info["trained"] is False and info["dataset"] == "curvevel-a"
    assert model.config["time_samples"] == 250
    with pytest.raises(BundleError, match="architecture"):
        load_source_model("no-such-model")


def test_prepare_records_decimates_full_length(bundle: Path) -> None:
    manifest = read_manifest(bundle)
    full = np.arange(5 * TIME_SAMPLES * 4 * 2, dtype=np.float32).reshape(5, TIME_SAMPLES * 4, 2)
    np.testing.assert_array_equal(prepare_records(full, manifest, 2), full[:, ::4])
    with pytest.raises(ValueError, match="time samples"):
        prepare_records(full[:, :10], manifest, 2)
    with pytest.raises(ValueError, match="receivers"):
        prepare_records(full, manifest, 3)


def test_export_cli(tmp_path: Path, capsys) -> None:
    from epic_zoo.deploy.__main__ import main

    assert main(["export", "epic-small", "--out", str(tmp_path / "b"), "--devices", "2"]) == 0
    manifest = json.loads((tmp_path / "b/manifest.json").read_text())
    assert manifest["architecture"] == "epic-small" and manifest["num_devices"] == 2
    assert "UNTRAINED" in capsys.readouterr().err


@pytest.mark.slow  # imports torchmetrics (epic_zoo.metrics): ~10 s on a busy CPU
def test_ssim_vs_devices_lost_goes_through_the_deployed_parts(
    bundle: Path, small_epic, records
) -> None:
    from epic_zoo.data.transforms import normalize_velocity
    from epic_zoo.deploy.testbed import ssim_vs_devices_lost
    from epic_zoo.metrics import openfwi_ssim

    velocity = np.linspace(1500.0, 4500.0, 70, dtype=np.float32)[None, :, None].repeat(70, 2)
    samples = [(records[i], velocity) for i in range(2)]
    rows = ssim_vs_devices_lost(bundle, samples)
    assert [r["devices_lost"] for r in rows] == list(range(NUM_DEVICES))
    assert [r["n"] for r in rows] == [2 * c for c in (1, 3, 3)]  # every subset of lost devices
    target = (normalize_velocity(torch.from_numpy(velocity))[None] + 1) / 2
    expected, errors = [], []
    for raw, _ in samples:
        x = normalize_seismic(torch.from_numpy(raw), "flatvel-a")[None]
        with torch.inference_mode():
            pred = small_epic(x)
            expected.append(float(openfwi_ssim((pred + 1) / 2, target)))
            errors.append(float((pred - (2 * target - 1)).abs().mean()) * 1500.0)
    assert rows[0]["ssim"] == pytest.approx(np.mean(expected), abs=1e-6)
    # MAE in m/s of the whole-network maps (codec rounding: within 1 m/s)
    assert rows[0]["mae_ms"] == pytest.approx(np.mean(errors), abs=1.0)
