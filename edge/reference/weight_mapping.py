"""Weights of a GANomaly trained elsewhere, mapped layer by layer onto gedge's NetG and NetD.

An importer (:mod:`gedge.reference.importers`) hands over the foreign layers of each network part in file order
(:func:`layers_under`); the model shape (isize, nc, nz, ngf, ndf, extralayers) is inferred from the tensor
shapes, and every tensor is copied onto gedge's layer at the same position with its kind and shape checked.
Anything that does not fit is refused with one :class:`ArtifactError` line naming the file. The result is a
checkpoint whose decision rule is not fitted yet (:data:`UNFITTED_RULE`) unless the caller gives one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from gedge.core.decision import DecisionRule
from gedge.core.errors import ArtifactError, ConfigError
from gedge.core.preprocess import Preprocess
from gedge.reference.checkpoint import Checkpoint
from gedge.reference.model import ModelConfig, NetD, NetG

UNFITTED_RULE = "not fitted: imported weights; `gedge import --data <normal images>` fits the decision rule"


_BN_LEAVES = frozenset({"weight", "bias", "running_mean", "running_var"})


GENERATOR_PARTS = ("encoder1", "decoder", "encoder2")


DISCRIMINATOR_PARTS = ("features", "classifier")


@dataclass(frozen=True)
class ImportOptions:
    """What the caller knows or wants beyond the weights: expected shape, preprocessing, a decision rule.

    ``isize`` and ``nc``, when given, must agree with the shapes in the files (they are inferred anyway).
    """

    isize: int | None = None
    nc: int | None = None
    preprocess: Preprocess | None = None
    decision: DecisionRule | None = None


@dataclass
class Layer:
    """One module's tensors: a convolution (``weight`` only) or a BatchNorm."""

    name: str
    kind: str
    leaves: dict[str, torch.Tensor]

    @property
    def weight(self) -> torch.Tensor:
        return self.leaves["weight"]


@dataclass
class ForeignNetworks:
    """The foreign layers per network part (GENERATOR_PARTS, DISCRIMINATOR_PARTS) and the files they came from."""

    generator: dict[str, list[Layer]]
    discriminator: dict[str, list[Layer]]
    generator_path: Path
    discriminator_path: Path


def _stage(name: str, decoder: bool) -> int | None:
    """Position of a named original/anomalib layer in the network (None for numbered layers)."""
    last = name.rsplit(".", 1)[-1]
    head = name.split(".", 1)[0]
    if last.isdigit():
        return None
    if last.startswith("initial") or head in ("input_layers", "latent_input"):
        return 0
    if last.startswith("extra-layers") or head == "extra_layers":
        return 2 if decoder else 1
    if last.startswith("pyramid") or head in ("pyramid_features", "inverse_pyramid"):
        return 1 if decoder else 2
    if last.startswith("final") or head in ("final_conv_layer", "final_layers"):
        return 3
    return None


def layers_under(state: Mapping[str, torch.Tensor], prefix: str, path: Path | None,
                 parts: tuple[str, ...] | None = None, decoder: bool = False) -> list[Layer]:
    """The layers under ``prefix`` in file order, each checked to be a conv or a BatchNorm.

    ``parts`` restricts the first name below ``prefix`` (anomalib's named blocks); named layers of the original
    code and anomalib must come in network order (``decoder`` says which order), numbered ones ascending.
    """
    groups: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if key.startswith(prefix):
            module, _, leaf = key[len(prefix):].rpartition(".")
            if parts is not None and module.split(".", 1)[0] not in parts:
                raise ArtifactError(f"unexpected key {key} (expected {prefix}{{{','.join(parts)}}}.*)", path)
            groups.setdefault(module, {})[leaf] = value
    layers, last_stage, last_index = [], -1, -1
    for module, leaves in groups.items():
        name = prefix + module
        names = set(leaves)
        if names == {"weight"} and leaves["weight"].dim() == 4:
            kind = "conv"
        elif _BN_LEAVES <= names <= _BN_LEAVES | {"num_batches_tracked"} and leaves["weight"].dim() == 1:
            kind = "bn"
        else:
            raise ArtifactError(f"layer {name} has tensors {sorted(names)}; expected a bias-free convolution "
                                "or a BatchNorm", path)
        stage = _stage(module, decoder)
        if stage is not None:
            if stage < last_stage:
                raise ArtifactError(f"layer {name} is out of order (the file's layers must be in network order)",
                                    path)
            last_stage = stage
        last = module.rsplit(".", 1)[-1]
        if last.isdigit():
            if int(last) <= last_index:
                raise ArtifactError(f"layer {name} is out of order (the file's layers must be in network order)",
                                    path)
            last_index = int(last)
        layers.append(Layer(name, kind, leaves))
    return layers


@dataclass
class EncoderShape:
    """What an encoder's convolutions say about the model: channels, width, latent size, depth."""

    nc: int
    nf: int
    nz: int
    extralayers: int
    pyramid: int

    @property
    def isize(self) -> int:
        """The input side: 8 doubled once per pyramid level (the first conv halves, the last one maps 4x4)."""
        return 2 ** (self.pyramid + 3)


def encoder_shape(layers: list[Layer], where: str, path: Path) -> EncoderShape:
    """The shape of an encoder from its convolutions: 4x4 first and last, 3x3 extra layers, 4x4 pyramid."""
    convs = [layer for layer in layers if layer.kind == "conv"]
    if len(convs) < 2:
        raise ArtifactError(f"{where} has {len(convs)} convolution(s); a GANomaly encoder has at least 2", path)
    first, last = convs[0].weight, convs[-1].weight
    if tuple(first.shape[2:]) != (4, 4) or tuple(last.shape[2:]) != (4, 4):
        raise ArtifactError(f"{where}: first and last convolutions must be 4x4, got {tuple(first.shape)} and "
                            f"{tuple(last.shape)}", path)
    middle = [tuple(c.weight.shape[2:]) for c in convs[1:-1]]
    if any(k not in ((3, 3), (4, 4)) for k in middle):
        raise ArtifactError(f"{where}: unexpected kernel sizes {middle}", path)
    return EncoderShape(nc=int(first.shape[1]), nf=int(first.shape[0]), nz=int(last.shape[0]),
                         extralayers=middle.count((3, 3)), pyramid=middle.count((4, 4)))


def _transfer(src: list[Layer], dst_state: Mapping[str, torch.Tensor], dst_prefix: str, where: str,
              path: Path) -> dict[str, torch.Tensor]:
    """Copy ``src`` onto the gedge layers under ``dst_prefix``; counts, kinds and shapes must all match."""
    dst = layers_under(dst_state, dst_prefix, None)
    if len(src) != len(dst):
        raise ArtifactError(f"{where} has {len(src)} layers with weights; the inferred model needs {len(dst)}",
                            path)
    out: dict[str, torch.Tensor] = {}
    for s, d in zip(src, dst):
        if s.kind != d.kind:
            raise ArtifactError(f"{s.name} is a {s.kind} where the inferred model has a {d.kind}", path)
        for leaf, target in d.leaves.items():
            key = f"{d.name}.{leaf}"
            if leaf not in s.leaves:  # num_batches_tracked, absent in files from PyTorch < 0.4.1
                out[key] = torch.zeros_like(target)
                continue
            value = s.leaves[leaf]
            if tuple(value.shape) != tuple(target.shape):
                raise ArtifactError(f"{s.name}.{leaf} has shape {tuple(value.shape)}; the inferred model needs "
                                    f"{tuple(target.shape)}", path)
            if leaf != "num_batches_tracked" and not value.is_floating_point():
                raise ArtifactError(f"{s.name}.{leaf} is {value.dtype}, not a floating-point tensor", path)
            out[key] = value.detach().to(device="cpu", dtype=target.dtype).clone().contiguous()
    return out


def _config(path: Path, **values) -> ModelConfig:
    """The inferred ModelConfig; a shape gedge cannot build is the file's problem, named as such."""
    try:
        return ModelConfig(**values)
    except ConfigError as exc:
        raise ArtifactError(f"the weights describe a model gedge cannot represent: {exc.problem}", path) from None


def _check_expected(name: str, expected: int | None, found: int, path: Path) -> None:
    """Refuse a shape the caller asked for that the weights do not have."""
    if expected is not None and expected != found:
        raise ArtifactError(f"the weights are for {name} {found}, not the requested {name} {expected}", path)


def _states(config: ModelConfig, networks: ForeignNetworks) -> tuple[dict, dict]:
    """gedge state dicts for the inferred config, filled from the foreign layers."""
    g_state, d_state = NetG(config).state_dict(), NetD(config).state_dict()
    netg_state: dict[str, torch.Tensor] = {}
    for part in GENERATOR_PARTS:
        netg_state.update(_transfer(networks.generator[part], g_state, f"{part}.", f"generator {part}",
                                    networks.generator_path))
    netd_state: dict[str, torch.Tensor] = {}
    for part in DISCRIMINATOR_PARTS:
        netd_state.update(_transfer(networks.discriminator[part], d_state, f"{part}.", f"discriminator {part}",
                                    networks.discriminator_path))
    return netg_state, netd_state


def infer_config(networks: ForeignNetworks, first_padding: int, options: ImportOptions) -> ModelConfig:
    """The model shape the weights describe; G and D must agree with each other and with ``options``."""
    g_path, d_path = networks.generator_path, networks.discriminator_path
    g = encoder_shape(networks.generator["encoder1"], "generator encoder1", g_path)
    d = encoder_shape(networks.discriminator["features"] + networks.discriminator["classifier"], "discriminator",
                      d_path)
    _check_expected("isize", options.isize, g.isize, g_path)
    _check_expected("nc", options.nc, g.nc, g_path)
    if d.nz != 1:
        raise ArtifactError(f"the discriminator's classifier has {d.nz} outputs, expected 1", d_path)
    if (d.isize, d.nc, d.extralayers) != (g.isize, g.nc, g.extralayers):
        raise ArtifactError(f"discriminator is for isize {d.isize}, nc {d.nc}, extralayers {d.extralayers} but "
                            f"the generator is for isize {g.isize}, nc {g.nc}, extralayers {g.extralayers}", d_path)
    return _config(g_path, isize=g.isize, nc=g.nc, nz=g.nz, ngf=g.nf, ndf=d.nf, extralayers=g.extralayers,
                   first_padding=first_padding)


def imported_checkpoint(networks: ForeignNetworks, first_padding: int, facts: dict,
                        options: ImportOptions) -> Checkpoint:
    """A gedge checkpoint holding the foreign weights, with ``facts`` about where they came from.

    Without ``options.preprocess`` the images are resized to the model's input; without ``options.decision``
    the decision rule is the unfitted default (primary d1, :data:`UNFITTED_RULE`).
    """
    config = infer_config(networks, first_padding, options)
    netg_state, netd_state = _states(config, networks)
    preprocess = options.preprocess
    if preprocess is None:
        preprocess = Preprocess(mode="resize", isize=config.isize, channels=config.nc)
    elif preprocess.isize != config.isize or preprocess.channels != config.nc:
        raise ConfigError(f"preprocess is for {preprocess.isize}px, {preprocess.channels} channel(s) but the "
                          f"imported model takes {config.isize}px, {config.nc} channel(s)")
    decision = options.decision
    if decision is None:
        decision = DecisionRule(primary="d1", threshold_rule=UNFITTED_RULE)
    checkpoint = Checkpoint(model=config, preprocess=preprocess, decision=decision,
                            netg_state=netg_state, netd_state=netd_state, facts=facts)
    try:
        checkpoint.networks()
    except ArtifactError as exc:
        raise ArtifactError(exc.problem, networks.generator_path) from None
    return checkpoint
