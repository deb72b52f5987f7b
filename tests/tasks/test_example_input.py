"""Tasks carry an example input, so Lightning's model summary counts FLOPs."""

from __future__ import annotations

import pytest
from lightning.pytorch.utilities.model_summary import ModelSummary

from epic_zoo.data.geometry import NUM_RECEIVERS, NUM_SOURCES
from epic_zoo.tasks.gan import GANTask
from epic_zoo.tasks.inversion import InversionTask

SMALL = {
    "inversionnet": {"dims": [8, 16, 32, 64, 128]},
    "velocitygan": {"dims": [8, 16, 32, 64, 128], "critic_dims": [8, 16, 32, 64]},
    "epic": {"d_model": 32, "heads": 2, "latent_dim": 16, "encoder_width": 16},
}


@pytest.mark.parametrize(
    ("model_name", "time_samples"), [("epic", 250), ("inversionnet", 1000), ("velocitygan", 250)]
)
def test_model_summary_counts_flops(model_name, time_samples):
    task_class = GANTask if model_name == "velocitygan" else InversionTask
    task = task_class(
        model_name=model_name, model_kwargs={"time_samples": time_samples, **SMALL[model_name]}
    )
    assert tuple(task.example_input_array.shape) == (1, NUM_SOURCES, time_samples, NUM_RECEIVERS)
    summary = ModelSummary(task, max_depth=1)
    assert summary.total_flops > 0
    assert summary.out_sizes[summary.layer_names.index("model")] == [1, 1, 70, 70]
