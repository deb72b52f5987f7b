"""Run configurations checked when composed; model arguments listed with their defaults."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from epic_zoo.config_schema import (
    ConfigError,
    explicit_model_kwargs,
    model_defaults,
    model_yaml,
    validate_config,
)
from epic_zoo.models import list_models
from epic_zoo.run import available_recipes, compose_config, config_dir


@pytest.mark.parametrize("name", list_models())
def test_model_file_lists_every_builder_argument(name):
    """recipes/model/NAME.yaml is what model_yaml writes: regenerate it if the builder changed."""
    path = config_dir() / "model" / f"{name}.yaml"
    text = path.read_text()
    assert text == model_yaml(name, text[: text.index("name:")]), (
        f"{path} is stale: rewrite it with epic_zoo.config_schema.model_yaml"
    )
    cfg = compose_config(["recipe=epic_lite", f"model={name}"])
    kwargs = OmegaConf.to_container(cfg.model.kwargs, resolve=True)
    assert set(kwargs) == set(model_defaults(name))
    assert explicit_model_kwargs(name, kwargs) == {}  # listed defaults record as before: nothing


@pytest.mark.parametrize("recipe", available_recipes())
def test_every_recipe_is_valid(recipe):
    validate_config(compose_config([f"recipe={recipe}"]))


def test_model_arguments_are_set_without_plus_and_old_commands_still_work():
    for override in ("model.kwargs.latent_dim=32", "+model.kwargs.latent_dim=32"):
        cfg = compose_config(["recipe=epic_lite", override])
        kwargs = OmegaConf.to_container(cfg.model.kwargs, resolve=True)
        assert explicit_model_kwargs("epic", kwargs) == {"latent_dim": 32}


def test_defaults_follow_model_name():
    cfg = compose_config(["recipe=epic_lite", "model.name=epic-isolated"])
    kwargs = OmegaConf.to_container(cfg.model.kwargs, resolve=True)
    assert kwargs["head_channels"] == [32, 16, 8] and kwargs["fusion"] == "isolated"
    assert explicit_model_kwargs("epic-isolated", kwargs) == {}


def test_values_from_the_data_stay_unset():
    defaults = compose_config(["recipe=epic_lite"]).model.kwargs
    assert defaults.time_samples is None and defaults.num_devices is None


def test_unknown_model_name_is_a_config_error():
    with pytest.raises(ConfigError, match="model.name='resnet'"):
        validate_config(compose_config(["recipe=epic_lite", "model.name=resnet"]))


@pytest.mark.parametrize(
    "dataset", ["flatvel-a", "all", "ALL", "[flatvel-a,style-b]", "[curvefault-b]"]
)
def test_a_union_of_datasets_is_a_valid_dataset(dataset):
    """``data.dataset`` takes a name, ``all`` or a list (the union model of the scale queue)."""
    validate_config(compose_config(["recipe=epic", f"data.dataset={dataset}"]))


@pytest.mark.parametrize(
    ("dataset", "message"),
    [
        ("flatvel", "'flatvel' is not an OpenFWI dataset. Did you mean"),
        ("[flatvel-a,stylee-b]", "'stylee-b' is not an OpenFWI dataset. Did you mean style-b"),
        ("[flatvel-a,flatvel-a]", "give distinct dataset names"),
        ("[]", "give distinct dataset names"),
    ],
)
def test_a_bad_dataset_or_member_is_named_with_the_fix(dataset, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(compose_config(["recipe=epic", f"data.dataset={dataset}"]))
