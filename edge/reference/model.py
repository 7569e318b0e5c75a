"""GANomaly networks (Akcay et al., ACCV 2018): generator NetG (encoder, decoder, encoder) and NetD.

DCGAN blocks: a Conv(4,2,1) pyramid with BatchNorm and LeakyReLU(0.2) halves the image down to 4x4,
a final Conv(4,1,0) maps it to the latent vector; the decoder mirrors it with ConvTranspose, BatchNorm
and ReLU and ends in Tanh. NetD is the same encoder with one output; its *features* are everything
before the last convolution and feed the residual scores D1 and D2.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from gedge.core.errors import ConfigError
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the two networks. ``isize`` is the side of the square input the networks see."""

    isize: int = 64
    nc: int = 3
    nz: int = 100
    ngf: int = 64
    ndf: int = 64
    extralayers: int = 0
    first_padding: int = 1  # padding of the very first encoder conv; anomalib's GANomaly uses 4
    # Side of the box blur taken of the residual x - G(x) before d3_local's window mean (0: none, as checkpoints
    # from before it and imported ones). Training sets it to the d3_local window (docs/scores.md).
    residual_blur: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.isize, int) or self.isize < 16 or self.isize > 512 or self.isize & (self.isize - 1):
            raise ConfigError(f"isize must be a power of two from 16 to 512, got {self.isize}")
        if self.nc not in (1, 3):
            raise ConfigError(f"nc (image channels) must be 1 or 3, got {self.nc}")
        for name in ("nz", "ngf", "ndf"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value}")
        if self.ngf % 2 or self.ndf % 2:
            raise ConfigError(f"ngf and ndf must be even, got ngf={self.ngf} ndf={self.ndf}")
        if not isinstance(self.extralayers, int) or not 0 <= self.extralayers <= 8:
            raise ConfigError(f"extralayers must be 0 to 8, got {self.extralayers}")
        if self.first_padding not in (1, 4) or isinstance(self.first_padding, bool):
            raise ConfigError(f"first_padding must be 1 or 4, got {self.first_padding}")
        if (not isinstance(self.residual_blur, int) or isinstance(self.residual_blur, bool) or self.residual_blur < 0
                or (self.residual_blur and (self.residual_blur % 2 == 0 or not 3 <= self.residual_blur <= self.isize))):
            raise ConfigError(f"residual_blur must be 0 or an odd side from 3 to isize ({self.isize}), "
                              f"got {self.residual_blur}")
        side = encoded_side(self.isize, self.first_padding)
        if side != 1:
            raise ConfigError(f"first_padding {self.first_padding} at isize {self.isize} gives a {side}x{side} "
                              "latent instead of 1x1; use isize 32 or more with first_padding 4")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ModelConfig:
        known = {k: values[k] for k in cls.__dataclass_fields__ if k in values}
        return cls(**known)


def local_window(isize: int) -> int:
    """Side of the window the local scores average over: an eighth of the input, odd, at least 3."""
    return max(3, (isize // 8) | 1)


def encoded_side(isize: int, first_padding: int = 1) -> int:
    """Side of the encoder's output map: 1 for every valid isize with padding 1 (and isize >= 32 with 4)."""
    side = (isize + 2 * first_padding - 4) // 2 + 1
    size = isize // 2
    while size > 4:
        side, size = (side - 2) // 2 + 1, size // 2
    return side - 3


def encoder_layers(isize: int, nc: int, nf: int, nz: int, extralayers: int,
                   first_padding: int = 1) -> list[nn.Module]:
    """Conv pyramid from ``isize`` down to 4x4 followed by the 4x4 conv to ``nz`` channels (1x1).

    ``first_padding`` pads the first conv: 1 (the original GANomaly) or 4 (anomalib's variant, whose
    first map is isize/2 + 3 and still reaches 4x4 through the same pyramid for isize >= 32).
    """
    layers: list[nn.Module] = [nn.Conv2d(nc, nf, 4, 2, first_padding, bias=False),
                               nn.LeakyReLU(0.2, inplace=True)]
    size, channels = isize // 2, nf
    for _ in range(extralayers):
        layers += [nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels),
                   nn.LeakyReLU(0.2, inplace=True)]
    while size > 4:
        layers += [nn.Conv2d(channels, channels * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(channels * 2),
                   nn.LeakyReLU(0.2, inplace=True)]
        channels, size = channels * 2, size // 2
    layers.append(nn.Conv2d(channels, nz, 4, 1, 0, bias=False))
    return layers


def decoder_layers(isize: int, nc: int, nf: int, nz: int, extralayers: int) -> list[nn.Module]:
    """Mirror of :func:`encoder_layers`: 1x1 latent to a 4x4 map, doubled up to ``isize``, Tanh."""
    channels, size = nf // 2, 4
    while size != isize:
        channels, size = channels * 2, size * 2
    layers: list[nn.Module] = [nn.ConvTranspose2d(nz, channels, 4, 1, 0, bias=False), nn.BatchNorm2d(channels),
                               nn.ReLU(inplace=True)]
    size = 4
    while size < isize // 2:
        layers += [nn.ConvTranspose2d(channels, channels // 2, 4, 2, 1, bias=False),
                   nn.BatchNorm2d(channels // 2), nn.ReLU(inplace=True)]
        channels, size = channels // 2, size * 2
    for _ in range(extralayers):
        layers += [nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels),
                   nn.ReLU(inplace=True)]
    layers += [nn.ConvTranspose2d(channels, nc, 4, 2, 1, bias=False), nn.Tanh()]
    return layers


class Encoder(nn.Module):
    def __init__(self, isize: int, nc: int, nf: int, nz: int, extralayers: int, first_padding: int = 1) -> None:
        super().__init__()
        self.main = nn.Sequential(*encoder_layers(isize, nc, nf, nz, extralayers, first_padding))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


class Decoder(nn.Module):
    def __init__(self, isize: int, nc: int, nf: int, nz: int, extralayers: int) -> None:
        super().__init__()
        self.main = nn.Sequential(*decoder_layers(isize, nc, nf, nz, extralayers))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z)


class NetG(nn.Module):
    """Encoder-decoder-encoder generator: returns (reconstruction, latent of x, latent of reconstruction)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        c = self.config = config
        self.encoder1 = Encoder(c.isize, c.nc, c.ngf, c.nz, c.extralayers, c.first_padding)
        self.decoder = Decoder(c.isize, c.nc, c.ngf, c.nz, c.extralayers)
        self.encoder2 = Encoder(c.isize, c.nc, c.ngf, c.nz, c.extralayers, c.first_padding)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        latent_i = self.encoder1(x)
        fake = self.decoder(latent_i)
        latent_o = self.encoder2(fake)
        return fake, latent_i, latent_o


class NetD(nn.Module):
    """Discriminator: the encoder with one output. ``forward`` returns (logit, features).

    The classifier returns a logit (no Sigmoid) so training uses the numerically stable
    ``BCEWithLogits``; the original code's Sigmoid output is ``torch.sigmoid`` of it.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        c = config
        layers = encoder_layers(c.isize, c.nc, c.ndf, 1, c.extralayers, c.first_padding)
        self.features = nn.Sequential(*layers[:-1])
        self.classifier = nn.Sequential(layers[-1])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.features(x)
        logit = self.classifier(features).view(-1)
        return logit, features


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: conv weights N(0, 0.02), BatchNorm weight N(1, 0.02) and bias 0."""
    name = type(module).__name__
    if name.startswith("Conv"):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif name.startswith("BatchNorm"):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def build_networks(config: ModelConfig, seed: int | None = None) -> tuple[NetG, NetD]:
    """Fresh, initialised networks; ``seed`` makes the initialisation reproducible."""
    if seed is not None:
        torch.manual_seed(seed)
    netg, netd = NetG(config), NetD(config)
    netg.apply(init_weights)
    netd.apply(init_weights)
    return netg, netd
