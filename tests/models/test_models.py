"""Every registered model: shapes, gradients, config round trip; distributed contract and payloads."""

from __future__ import annotations

import pytest
import torch

from epic_zoo.data.geometry import NUM_RECEIVERS, NUM_SOURCES
from epic_zoo.models import (
    DistributedModel,
    FederatedInversionNet,
    InversionNet,
    create_model,
    list_models,
    model_summary,
    register_model,
)

T_SMALL = 64
"""Short records keep every test fast; kernels that follow T are exercised too."""
RAW_BYTES_PER_DEVICE = (
    14 * NUM_SOURCES * 1000 * 4
)  # 280 kB: one device's float32 records at T = 1000
DISTRIBUTED = [
    n for n in list_models() if isinstance(create_model(n, time_samples=T_SMALL), DistributedModel)
]


pytestmark = pytest.mark.usefixtures("one_thread")


def _seismic(batch: int = 2, time_samples: int = T_SMALL, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(batch, NUM_SOURCES, time_samples, NUM_RECEIVERS, generator=gen) * 2 - 1


def _model(name: str, **kwargs) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(name, time_samples=T_SMALL, **kwargs)


def test_registry_has_the_issue_models() -> None:
    expected = {
        "inversionnet",
        "velocitygan",
        "epic",
        "epic-equal",
        "epic-isolated",
        "split",
        "federated",
    }
    assert expected | {"epic-4bit", "epic-8bit", "epic-small"} <= set(list_models())
    assert DISTRIBUTED and "inversionnet" not in DISTRIBUTED
    assert list_models("epic-*bit") == ["epic-4bit", "epic-8bit"]


@pytest.mark.parametrize("name", list_models())
def test_forward_backward(name: str) -> None:
    model = _model(name).train()
    velocity = model(_seismic())
    assert velocity.shape == (2, 1, 70, 70)
    assert torch.isfinite(velocity).all()
    assert velocity.abs().max() <= 1
    if getattr(model, "input_free", False):
        # input-free baselines have no trainable parameters and ignore the records
        assert not list(model.parameters())
        assert torch.equal(velocity, model(_seismic(batch=2) * 0))
        return
    velocity.mean().backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads, "no parameter received a gradient"
    assert all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", list_models())
def test_config_round_trip(name: str) -> None:
    model = _model(name)
    assert model.config["name"] == name
    assert model.config["time_samples"] == T_SMALL
    rebuilt = create_model(**model.config)
    assert rebuilt.config == model.config
    mine = {k: v.shape for k, v in model.state_dict().items()}
    assert mine == {k: v.shape for k, v in rebuilt.state_dict().items()}


@pytest.mark.parametrize("name", list_models())
def test_wrong_time_length_names_the_fix(name: str) -> None:
    with pytest.raises(ValueError, match=f"time_samples={T_SMALL * 2}"):
        _model(name)(_seismic(time_samples=T_SMALL * 2))


@pytest.mark.parametrize("name", DISTRIBUTED)
def test_decode_of_payloads_equals_forward_exactly(name: str) -> None:
    model = _model(name).eval()
    seismic = _seismic(batch=3)
    with torch.no_grad():
        expected = model(seismic)
        latents = []
        for k, seismic_k in enumerate(model.split_seismic(seismic)):
            payloads = model.pack(k, model.encode(k, seismic_k), first_sample_id=100)
            assert all(len(p) == model.payload_bytes(k) for p in payloads)
            latents.append(model.unpack(payloads))
        assert torch.equal(model.decode(latents), expected)


@pytest.mark.parametrize("name", DISTRIBUTED)
def test_dropped_devices_degrade_not_break(name: str) -> None:
    model = _model(name).eval()
    seismic = _seismic()
    with torch.no_grad():
        latents = [model.encode(k, s) for k, s in enumerate(model.split_seismic(seismic))]
        full = model.decode(latents)
        one_missing = model.decode([None, *latents[1:]])
        assert torch.isfinite(one_missing).all() and one_missing.abs().max() <= 1
        ignored = torch.zeros(2, model.num_devices, dtype=torch.bool)
        ignored[:, 1:] = True
        garbage = model.decode([torch.ones_like(latents[0]), *latents[1:]], ignored)
        assert torch.equal(garbage, one_missing)  # an absent device's latent has no influence
        mask = torch.ones(2, model.num_devices, dtype=torch.bool)
        mask[1, :-1] = False  # sample 1: only the last device arrived
        mixed = model.decode(latents, mask)
        assert torch.equal(mixed[0], full[0])  # sample 0 untouched by sample 1's losses
        assert torch.isfinite(mixed).all()
        with pytest.raises(ValueError, match="all devices are absent"):
            model.decode([None] * model.num_devices)
        mask[0] = False
        with pytest.raises(ValueError, match=r"sample\(s\) \[0\]"):
            model.decode(latents, mask)


@pytest.mark.parametrize("name", DISTRIBUTED)
def test_device_sees_only_its_receivers(name: str) -> None:
    model = _model(name).eval()
    seismic = _seismic()
    other = seismic.clone()
    other[..., model.receiver_split[1]] = 0.5
    with torch.no_grad():
        assert torch.equal(
            model.encode(0, model.split_seismic(seismic)[0]),
            model.encode(0, model.split_seismic(other)[0]),
        )
    with pytest.raises(ValueError, match="device 0 encoder"):
        model.encode(0, seismic)  # all 70 receivers instead of device 0's 14
    with pytest.raises(IndexError):
        model.encode(model.num_devices, seismic)


@pytest.mark.parametrize("name", [n for n in DISTRIBUTED if n.startswith("epic")])
def test_epic_payload_is_under_one_percent_of_raw_at_full_length(name: str) -> None:
    model = create_model(name, time_samples=1000).eval()
    assert model.payload_bytes() <= RAW_BYTES_PER_DEVICE / 100
    with torch.no_grad():
        latent = model.encode(2, _seismic(batch=1, time_samples=1000)[..., model.receiver_split[2]])
    assert len(model.pack(2, latent)[0]) == model.payload_bytes()


def test_payload_sizes_of_the_variants() -> None:
    at = {
        n: create_model(n, time_samples=1000).payload_bytes()
        for n in ("epic", "epic-4bit", "epic-small", "split")
    }
    assert at == {
        "epic": 14 * 64 + 37,
        "epic-4bit": 14 * 32 + 37,
        "epic-small": 14 * 32 + 37,
        "split": 128 * 63 * 14 + 41,
    }


def test_unpack_rejects_payloads_of_another_config() -> None:
    epic, small = _model("epic").eval(), _model("epic-small").eval()
    with torch.no_grad():
        latent = small.encode(0, small.split_seismic(_seismic())[0])
    with pytest.raises(ValueError, match="model_version"):
        epic.unpack(small.pack(0, latent))


@pytest.mark.parametrize("time_samples", [1000, 250, 64])
def test_inversionnet_encoder_reaches_1x1(time_samples: int) -> None:
    net = InversionNet(time_samples=time_samples).eval()
    code = net.forward_space(
        net.forward_time(torch.zeros(1, NUM_SOURCES, time_samples, NUM_RECEIVERS))
    )
    assert code.shape == (1, 512, 1, 1)


def test_inversionnet_matches_openfwi_size() -> None:
    net = InversionNet()
    assert net.last_kernel() == (8, 9)  # OpenFWI's convblock8 kernel at T = 1000
    assert 24.3e6 < sum(p.numel() for p in net.parameters()) < 24.5e6


def test_epic_summary_sizes() -> None:
    summary = model_summary(create_model("epic", time_samples=1000))
    assert 1e6 <= summary["params"] <= 2e6
    assert 0 < summary["encoder_flops"] < 2e8  # a Raspberry-Pi-class budget per sample
    assert summary["encoder_params"] < 2e5
    assert summary["payload_bytes"] * 100 <= summary["raw_bytes_per_device"]


def test_fedavg_averages_local_models() -> None:
    model = _model("federated")
    assert isinstance(model, FederatedInversionNet)
    first = [m.convblock1.layers[0].weight for m in model.local_models]
    assert all(torch.equal(w, first[0]) for w in first)  # starts as one global model
    with torch.no_grad():
        for k, w in enumerate(first):
            w.add_(float(k))
    expected = first[0] + (model.num_devices - 1) / 2
    model.fedavg_()
    assert all(torch.allclose(w, expected) for w in first)
    preds = model.local_predictions(_seismic())
    assert preds.shape == (2, model.num_devices, 1, 70, 70)


def test_velocitygan_parts() -> None:
    model = _model("velocitygan")
    assert isinstance(model.generator, InversionNet)
    assert model.critic(torch.zeros(3, 1, 70, 70)).shape == (3, 1)


def test_unknown_name_suggests_close_match() -> None:
    with pytest.raises(KeyError, match="'epic'"):
        create_model("epik")


def test_pretrained_tag_without_weights_builds_the_architecture() -> None:
    model = create_model("epic.flatvel-a", time_samples=T_SMALL)
    assert model.config["name"] == "epic"


def test_duplicate_registration_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_model("epic")(lambda **kw: None)
