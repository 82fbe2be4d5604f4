"""DyAD's DynamicVAE (Zhang et al., Nat. Commun. 14, 5940, 2023), rebuilt layer for layer.

The battery is treated as a dynamical system: an encoder GRU reads every selected channel, its
final hidden state becomes a Gaussian latent (the system's parameters), and a decoder GRU that
sees only the *input* channels (charger-imposed: SOC, current, ...) predicts the *response*
channels from that latent. The response-prediction error is the anomaly score. A small MLP reads
the vehicle's normalised mileage off the latent mean as a weak auxiliary label.

Layer shapes and names follow the reference code so parameter counts match it exactly
(brand 2: 12,844,084).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import ClassVar, NamedTuple

import torch
from torch import nn

from src.core.errors import ConfigError
from src.models.registry import register_model

CHANNELS_BRAND_A = [
    "soc",
    "current",
    "min_temp",
    "max_single_volt",
    "max_temp",
    "min_single_volt",
    "volt",
]
CHANNELS_BRAND_B = [
    "soc",
    "current",
    "min_temp",
    "max_single_volt",
    "min_single_volt",
    "volt",
    "max_temp",
]


@dataclass
class DyadConfig:
    """Architecture of a DynamicVAE.

    Attributes:
        channels: Encoder channels in order; the first ``num_inputs`` are the decoder's inputs,
            the rest are the predicted responses.
        num_inputs: How many leading channels are system inputs.
        hidden_size: GRU hidden size H.
        num_layers: GRU layers (encoder and decoder alike).
        bidirectional: Bidirectional GRUs (all reference configs are).
        latent_size: Latent dimension L.
        noise_scale: Scale of the reparameterisation noise in training.
        reference_hidden_reshape: Keep the reference code's ``.view`` of the (f, B, H) hidden
            state to (B, f*H), which mixes neighbouring samples of a batch. Only for
            reproducing published numbers; the default permutes first.
    """

    channels: list[str] = field(default_factory=lambda: list(CHANNELS_BRAND_A))
    num_inputs: int = 2
    hidden_size: int = 64
    num_layers: int = 1
    bidirectional: bool = True
    latent_size: int = 16
    noise_scale: float = 0.01
    reference_hidden_reshape: bool = False
    FAMILY: ClassVar[str] = "dyad"

    def __post_init__(self) -> None:
        self.channels = list(self.channels)
        if len(set(self.channels)) != len(self.channels):
            raise ConfigError(f"model.channels has duplicates: {self.channels}; list each once")
        if not 0 < self.num_inputs < len(self.channels):
            raise ConfigError(
                f"model.num_inputs={self.num_inputs} must be between 1 and "
                f"{len(self.channels) - 1} (len(model.channels) - 1)"
            )
        for key in ("hidden_size", "num_layers", "latent_size"):
            if int(getattr(self, key)) < 1:
                raise ConfigError(f"model.{key} must be >= 1, got {getattr(self, key)}")
        if self.hidden_size < 2:
            raise ConfigError("model.hidden_size must be >= 2 (the mileage head uses H/2 units)")

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def hidden_factor(self) -> int:
        return self.directions * self.num_layers


class DyadOutput(NamedTuple):
    """Forward outputs: predicted responses (B, T, out), latent stats, sample, mileage."""

    prediction: torch.Tensor
    mean: torch.Tensor
    log_var: torch.Tensor
    z: torch.Tensor
    mileage: torch.Tensor


class DynamicVAE(nn.Module):
    """DyAD's dynamical VAE. Input: (B, T, len(channels)) in ``config.channels`` order."""

    def __init__(self, config: DyadConfig):
        super().__init__()
        self.config = config
        c, h, f = config, config.hidden_size, config.hidden_factor
        gru = dict(num_layers=c.num_layers, bidirectional=c.bidirectional, batch_first=True)
        self.encoder_rnn = nn.GRU(len(c.channels), h, **gru)
        self.decoder_rnn = nn.GRU(c.num_inputs, h, **gru)
        self.hidden2mean = nn.Linear(h * f, c.latent_size)
        self.hidden2log_v = nn.Linear(h * f, c.latent_size)
        self.latent2hidden = nn.Linear(c.latent_size, h * f)
        self.outputs2embedding = nn.Linear(h * c.directions, len(c.channels) - c.num_inputs)
        self.mean2latent = nn.Sequential(
            nn.Linear(c.latent_size, h // 2), nn.ReLU(), nn.Linear(h // 2, 1)
        )

    def forward(self, x: torch.Tensor) -> DyadOutput:
        batch = x.size(0)
        _, hidden = self.encoder_rnn(x)
        hidden = self._flatten_hidden(hidden, batch)
        mean, log_var = self.hidden2mean(hidden), self.hidden2log_v(hidden)
        if self.training:
            std = torch.exp(0.5 * log_var)
            z = mean + torch.randn_like(mean) * std * self.config.noise_scale
        else:
            z = mean
        h0 = self._unflatten_hidden(self.latent2hidden(z), batch)
        outputs, _ = self.decoder_rnn(x[..., : self.config.num_inputs], h0)
        return DyadOutput(self.outputs2embedding(outputs), mean, log_var, z, self.mean2latent(mean))

    def split_target(self, x: torch.Tensor) -> torch.Tensor:
        """The response channels the decoder predicts."""
        return x[..., self.config.num_inputs :]

    def _flatten_hidden(self, hidden: torch.Tensor, batch: int) -> torch.Tensor:
        """(f, B, H) -> (B, f*H). The reference ``.view`` skips the permute and mixes samples."""
        if self.config.reference_hidden_reshape:
            return hidden.reshape(batch, -1)
        return hidden.permute(1, 0, 2).reshape(batch, -1)

    def _unflatten_hidden(self, hidden: torch.Tensor, batch: int) -> torch.Tensor:
        f, h = self.config.hidden_factor, self.config.hidden_size
        if self.config.reference_hidden_reshape:
            return hidden.reshape(f, batch, h).contiguous()
        return hidden.reshape(batch, f, h).permute(1, 0, 2).contiguous()

    def export_config(self) -> dict:
        """Plain-dict config that rebuilds this architecture via ``create_model('dyad', **cfg)``."""
        return asdict(self.config)


@register_model(DyadConfig)
def dyad(config: DyadConfig) -> DynamicVAE:
    """DyAD with brand-1/3 channel routing at CPU-demo size (H=64, L=16); any field overridable."""
    return DynamicVAE(config)


# The reference JSON configs (model_params_battery_brand{1,2,3}.json), architecture part.
REFERENCE = {
    1: dict(
        channels=CHANNELS_BRAND_A,
        num_inputs=2,
        hidden_size=128,
        num_layers=2,
        latent_size=8,
        noise_scale=1.0,
    ),
    2: dict(
        channels=CHANNELS_BRAND_B,
        num_inputs=4,
        hidden_size=1024,
        num_layers=1,
        latent_size=24,
        noise_scale=0.01,
    ),
    3: dict(
        channels=CHANNELS_BRAND_A,
        num_inputs=2,
        hidden_size=256,
        num_layers=1,
        latent_size=16,
        noise_scale=0.01,
    ),
}


@register_model(DyadConfig, **REFERENCE[1])
def dyad_brand1(config: DyadConfig) -> DynamicVAE:
    """Reference brand-1 architecture: H=128, 2 layers, L=8 (814,230 parameters)."""
    return DynamicVAE(config)


@register_model(DyadConfig, **REFERENCE[2])
def dyad_brand2(config: DyadConfig) -> DynamicVAE:
    """Reference brand-2 architecture: H=1024, L=24, 4 inputs (12,844,084 parameters)."""
    return DynamicVAE(config)


@register_model(DyadConfig, **REFERENCE[3])
def dyad_brand3(config: DyadConfig) -> DynamicVAE:
    """Reference brand-3 architecture: H=256, L=16 (836,390 parameters)."""
    return DynamicVAE(config)


@register_model(DyadConfig, hidden_size=8, latent_size=4)
def dyad_tiny(config: DyadConfig) -> DynamicVAE:
    """A few thousand parameters, for tests."""
    return DynamicVAE(config)
