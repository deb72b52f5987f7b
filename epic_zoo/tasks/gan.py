"""VelocityGAN training: WGAN-GP with manual optimisation, as in OpenFWI (docs/references.md).

The model (``velocitygan``) exposes ``.generator`` (an InversionNet: seismic
``[B, 5, T, 70]`` -> velocity ``[B, 1, 70, 70]`` in ``[-1, 1]``) and ``.critic``
(velocity map -> score ``[B, 1]`` or ``[B]``, unbounded).

Per training batch (OpenFWI's VelocityGAN schedule):

1. critic step: ``D(G(x)) - D(v) + gp_lambda * GP`` where GP is the gradient
   penalty of Gulrajani et al. (2017) on random interpolates of real and
   predicted maps;
2. every ``n_critic``-th batch also a generator step:
   ``l1_weight * L1 + l2_weight * MSE - adv_weight * D(G(x))``
   (100, 100 and 1 by default).

Validation and test are those of :class:`~epic_zoo.tasks.inversion.VelocityTask`
(the generator's maps, all metrics, panels).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from epic_zoo.tasks.inversion import VelocityTask, to_plain


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP penalty ``E[(|grad D(x_hat)|_2 - 1)^2]`` on random interpolates.

    Args:
        critic: maps velocity ``[B, 1, 70, 70]`` to scores.
        real, fake: velocity maps ``[B, 1, 70, 70]`` (``fake`` detached).

    ``x_hat = a * real + (1 - a) * fake`` with ``a ~ U(0, 1)`` per sample; the
    graph is kept (``create_graph``) so the penalty trains the critic.
    """
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    mixed = (alpha * real + (1.0 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1.0) ** 2).mean()


class GANTask(VelocityTask):
    """Train ``velocitygan`` (or any model with ``.generator`` and ``.critic``) with WGAN-GP.

    Args:
        model_name: a registered adversarial model, default ``"velocitygan"``.
        model_kwargs: its constructor arguments (``time_samples``, ...).
        lr: generator learning rate (AdamW).
        critic_lr: critic learning rate; default ``lr``.
        betas: Adam betas of both optimisers; ``(0, 0.9)`` follows the WGAN-GP
            paper (Gulrajani et al. 2017, Algorithm 1).
        weight_decay: AdamW weight decay of both optimisers.
        l1_weight, l2_weight: content-loss weights of the generator (100, 100).
        adv_weight: weight of the adversarial term ``-D(G(x))`` (1).
        gp_lambda: gradient-penalty weight (10).
        n_critic: critic steps per generator step (5).
        num_panels, panel_every_n_epochs: validation panels, as in
            :class:`~epic_zoo.tasks.inversion.InversionTask`.
    """

    def __init__(
        self,
        model_name: str = "velocitygan",
        model_kwargs: Mapping[str, Any] | None = None,
        lr: float = 1e-4,
        critic_lr: float | None = None,
        betas: Sequence[float] = (0.0, 0.9),
        weight_decay: float = 1e-4,
        l1_weight: float = 100.0,
        l2_weight: float = 100.0,
        adv_weight: float = 1.0,
        gp_lambda: float = 10.0,
        n_critic: int = 5,
        num_panels: int = 3,
        panel_every_n_epochs: int = 1,
    ) -> None:
        super().__init__()
        if int(n_critic) < 1:
            raise ValueError(f"n_critic={n_critic} must be at least 1")
        # Plain containers only: save_hyperparameters reads these locals.
        model_kwargs = to_plain(model_kwargs or {})
        betas = [float(b) for b in to_plain(betas)]
        self.save_hyperparameters()
        self.automatic_optimization = False
        self._build(model_name, model_kwargs)
        if not (hasattr(self.model, "generator") and hasattr(self.model, "critic")):
            raise ValueError(
                f"GANTask needs a model with .generator and .critic (velocitygan), got "
                f"{model_name!r}; train it with InversionTask instead (Hydra: task=inversion)"
            )

    def training_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        """One critic step, and a generator step on every ``n_critic``-th batch."""
        opt_g, opt_c = self.optimizers()
        seismic, velocity = batch["seismic"], batch["velocity"]
        self._check_shapes(seismic, velocity)
        generator_step = (batch_idx + 1) % int(self.hparams.n_critic) == 0
        with torch.set_grad_enabled(generator_step):
            pred = self.model.generator(seismic)

        critic = self.model.critic
        fake = pred.detach()
        wasserstein = critic(velocity).mean() - critic(fake).mean()
        penalty = gradient_penalty(critic, velocity, fake)
        critic_loss = -wasserstein + self.hparams.gp_lambda * penalty
        opt_c.zero_grad()
        self.manual_backward(critic_loss)
        opt_c.step()

        content = self._loss(pred, velocity)
        if generator_step:
            self.toggle_optimizer(opt_g)
            adversarial = -critic(pred).mean()
            opt_g.zero_grad()
            self.manual_backward(content + self.hparams.adv_weight * adversarial)
            opt_g.step()
            self.untoggle_optimizer(opt_g)
            self.log("train/adv_loss", adversarial.detach(), on_step=False, on_epoch=True)

        batch_size = seismic.shape[0]
        self.log_dict(
            {
                "train/critic_loss": critic_loss.detach(),
                "train/wasserstein": wasserstein.detach(),
                "train/gp": penalty.detach(),
            },
            on_step=False,
            on_epoch=True,
            batch_size=batch_size,
        )
        self._log_metrics("train", content, pred, velocity)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        """``[generator AdamW, critic AdamW]``."""
        hp = self.hparams
        betas = tuple(hp.betas)
        generator = torch.optim.AdamW(
            self.model.generator.parameters(), lr=hp.lr, betas=betas, weight_decay=hp.weight_decay
        )
        critic = torch.optim.AdamW(
            self.model.critic.parameters(),
            lr=hp.critic_lr if hp.critic_lr is not None else hp.lr,
            betas=betas,
            weight_decay=hp.weight_decay,
        )
        return [generator, critic]
