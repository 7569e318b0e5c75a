"""Import detectors trained elsewhere: the original GANomaly code's files and anomalib's GANomaly checkpoints.

Supported files (:data:`gedge.reference.foreign_files.FORMATS`):

* ``ganomaly-netg`` / ``ganomaly-netd``: the original implementation (samet-akcay/ganomaly) saves
  ``netG.pth`` and ``netD.pth`` as ``{'epoch': int, 'state_dict': OrderedDict}``; a bare state dict
  (also with a ``module.`` prefix from DataParallel) is accepted too. G's keys are
  ``encoder1.main.<name>``, ``decoder.main.<name>``, ``encoder2.main.<name>`` with names such as
  ``initial-conv-3-64``, ``extra-layers-0-64-conv``, ``pyramid-64-128-conv``, ``pyramid-128-batchnorm``,
  ``final-512-100-conv``; D's are ``features.<i>`` and ``classifier.<i>`` (numbered, because the original
  NetD re-wraps the encoder's layers in plain Sequentials). Its classifier ends in a parameter-free
  Sigmoid; gedge's classifier returns the logit, so ``sigmoid(logit)`` is the original output.
* ``anomalib-ckpt``: a Lightning checkpoint of anomalib's ``Ganomaly``; its ``state_dict`` holds
  ``model.generator.{encoder1,encoder2}.{input_layers,extra_layers,pyramid_features}.<name>`` and
  ``...final_conv_layer``, ``model.generator.decoder.{latent_input,inverse_pyramid,extra_layers,
  final_layers}.<name>`` and ``model.discriminator.{features,classifier}.<i>``. Its first encoder conv
  pads by 4, which gedge reproduces with ``ModelConfig.first_padding = 4`` (isize 32 or more).

Files are read without running foreign code (:mod:`gedge.reference.foreign_files`); this module picks each
format's layers and facts, and :mod:`gedge.reference.weight_mapping` maps them onto gedge's networks. An
imported checkpoint's decision rule is not fitted (``gedge import --data`` fits it on normal images:
:func:`gedge.reference.decision_fit.refit_on_normals`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from gedge.core.decision import DecisionRule
from gedge.core.errors import ArtifactError
from gedge.core.hashing import sha256_file
from gedge.core.preprocess import Preprocess
from gedge.reference.checkpoint import Checkpoint, load_checkpoint
from gedge.reference.foreign_files import FORMATS, detect_format, file_kind, plain_data, read_torch_file, tensor_state
from gedge.reference.weight_mapping import (
    DISCRIMINATOR_PARTS,
    GENERATOR_PARTS,
    UNFITTED_RULE,
    ForeignNetworks,
    ImportOptions,
    encoder_shape,
    imported_checkpoint,
    layers_under,
)

ANOMALIB_PADDING = 4


_ANOMALIB_ENCODER_PARTS = ("input_layers", "extra_layers", "pyramid_features", "final_conv_layer")


_ANOMALIB_DECODER_PARTS = ("latent_input", "inverse_pyramid", "extra_layers", "final_layers")


_ANOMALIB_ROOTS = ("model.generator.encoder1", "model.generator.decoder", "model.generator.encoder2",
                   "model.discriminator.features", "model.discriminator.classifier")


def _ganomaly_state(path: Path, want: str) -> tuple[dict[str, torch.Tensor], dict]:
    """The tensors of an original GANomaly netG or netD file (``want``), and its epoch when it records one."""
    obj = read_torch_file(path)
    kind = file_kind(obj)
    if kind != want:
        found = f"a {kind} file" if kind else "not a GANomaly state dict"
        other = "netD" if want == "ganomaly-netd" else "netG"
        raise ArtifactError(f"expected the original GANomaly {other} file, found {found}", path)
    meta = {}
    if isinstance(obj, Mapping) and isinstance(obj.get("epoch"), int):
        meta["epoch"] = obj["epoch"]
    return tensor_state(obj), meta


def import_ganomaly(netg_path: str | Path, netd_path: str | Path, *, isize: int | None = None,
                    nc: int | None = None, preprocess: Preprocess | None = None,
                    decision: DecisionRule | None = None) -> Checkpoint:
    """A gedge checkpoint from the original GANomaly code's ``netG.pth`` and ``netD.pth``.

    ``isize`` and ``nc``, when given, must agree with the shapes in the files (they are inferred anyway).
    The decision rule is not fitted unless ``decision`` is given.
    """
    g_path, d_path = Path(netg_path), Path(netd_path)
    g_state, g_meta = _ganomaly_state(g_path, "ganomaly-netg")
    d_state, d_meta = _ganomaly_state(d_path, "ganomaly-netd")
    networks = ForeignNetworks(
        generator={part: layers_under(g_state, f"{part}.", g_path, ("main",), decoder=part == "decoder")
                   for part in GENERATOR_PARTS},
        discriminator={part: layers_under(d_state, f"{part}.", d_path) for part in DISCRIMINATOR_PARTS},
        generator_path=g_path, discriminator_path=d_path)
    facts = {"imported_from": "ganomaly", "source": str(g_path), "source_sha256": sha256_file(g_path),
             "source_netd": str(d_path), "source_netd_sha256": sha256_file(d_path)}
    if "epoch" in g_meta:
        facts["epoch"] = g_meta["epoch"]
    if "epoch" in d_meta:
        facts["epoch_netd"] = d_meta["epoch"]
    options = ImportOptions(isize=isize, nc=nc, preprocess=preprocess, decision=decision)
    return imported_checkpoint(networks, 1, facts, options)


def _find(tree, key: str, depth: int = 0):
    """First value stored under ``key`` anywhere in nested hyper-parameters."""
    if isinstance(tree, dict) and depth < 6:
        if key in tree and tree[key] is not None:
            return tree[key]
        for value in tree.values():
            found = _find(value, key, depth + 1)
            if found is not None:
                return found
    return None


def _anomalib_hparams(obj: Mapping) -> dict:
    """The shape-related hyper-parameters an anomalib checkpoint records, where it records them."""
    tree = plain_data(obj.get("hyper_parameters", obj.get("hparams")))
    if not isinstance(tree, dict):
        return {}
    found = {}
    for key in ("input_size", "n_features", "latent_vec_size", "extra_layers", "add_final_conv_layer",
                "add_final_conv"):
        value = _find(tree, key)
        if value is not None:
            found[key] = value
    return found


def _anomalib_input_size(value, path: Path) -> int | None:
    """anomalib's ``input_size`` as one side; None when absent or not a size, an error when gedge cannot take it."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        value = [value, value]
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value)):
        return None
    h, w = value
    if h != w:
        raise ArtifactError(f"anomalib input_size is {h}x{w}; gedge imports square models only", path)
    if h < 1 or h & (h - 1):
        raise ArtifactError(f"anomalib input_size {h} is not a power of two (anomalib pads such inputs to the "
                            "next power of two, which gedge's preprocessing does not reproduce)", path)
    return h


def _anomalib_state(obj: Mapping, path: Path) -> dict[str, torch.Tensor]:
    """The generator and discriminator tensors of an anomalib checkpoint, checked against GANomaly's layout."""
    raw = obj["state_dict"]
    state = {k: v for k, v in raw.items() if isinstance(k, str)
             and (k.startswith("model.generator.") or k.startswith("model.discriminator."))}
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ArtifactError(f"{bad[0]} is not a tensor", path)
    for key in state:
        if ".".join(key.split(".")[:3]) not in _ANOMALIB_ROOTS:
            raise ArtifactError(f"unexpected key {key} for anomalib's GANomaly", path)
    for part in ("encoder1", "encoder2"):
        if f"model.generator.{part}.final_conv_layer.weight" not in state:
            raise ArtifactError(f"generator {part} has no final_conv_layer (add_final_conv_layer=False); "
                                "gedge needs the latent convolution", path)
    return state


def _check_anomalib_shape(networks: ForeignNetworks, hp: dict, path: Path) -> None:
    """The weights' shape must agree with the recorded hyper-parameters and be one gedge reproduces exactly."""
    shape = encoder_shape(networks.generator["encoder1"], "generator encoder1", path)
    hp_isize = _anomalib_input_size(hp.get("input_size"), path)
    if hp_isize is not None and hp_isize != shape.isize:
        raise ArtifactError(f"hyper_parameters say input_size {hp_isize} but the weights are for isize "
                            f"{shape.isize}", path)
    for key, found in (("n_features", shape.nf), ("latent_vec_size", shape.nz), ("extra_layers",
                                                                                 shape.extralayers)):
        value = hp.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value != found:
            raise ArtifactError(f"hyper_parameters say {key} {value} but the weights have {found}", path)
    if shape.extralayers:
        raise ArtifactError(f"anomalib model has {shape.extralayers} extra layer(s); anomalib's decoder extra "
                            "layers use LeakyReLU where gedge's use ReLU, so it cannot be imported exactly", path)
    if shape.isize < 32:
        raise ArtifactError(f"anomalib model for isize {shape.isize}: its padding-4 first convolution leaves a "
                            "2x2 latent below isize 32, which gedge does not support", path)


def _anomalib_facts(obj: Mapping, hp: dict, path: Path) -> dict:
    """Where the weights came from and what the checkpoint says about its training."""
    facts = {"imported_from": "anomalib", "source": str(path), "source_sha256": sha256_file(path),
             "input_note": "anomalib normalises inputs with its own transform (often ImageNet mean/std); "
                           "gedge feeds [-1, 1]: fit the decision rule on your normal images (gedge import --data)"}
    for key in ("epoch", "global_step"):
        if isinstance(obj.get(key), int) and not isinstance(obj.get(key), bool):
            facts[key] = obj[key]
    version = obj.get("pytorch-lightning_version")
    if isinstance(version, str):
        facts["lightning_version"] = version
    hp_facts = {k: v for k, v in hp.items() if isinstance(v, (int, float, str, bool, list))}
    if hp_facts:
        facts["anomalib_hyper_parameters"] = hp_facts
    return facts


def import_anomalib(ckpt_path: str | Path, *, isize: int | None = None, nc: int | None = None,
                    preprocess: Preprocess | None = None,
                    decision: DecisionRule | None = None) -> Checkpoint:
    """A gedge checkpoint from an anomalib GANomaly Lightning checkpoint (``.ckpt``).

    The first encoder convolution pads by 4 as in anomalib (``ModelConfig.first_padding = 4``). The
    shape is inferred from the tensors and cross-checked with the checkpoint's ``hyper_parameters``
    when present; ``isize`` and ``nc``, when given, must agree too.
    """
    path = Path(ckpt_path)
    obj = read_torch_file(path)
    kind = file_kind(obj)
    if kind != "anomalib-ckpt":
        found = f"a {kind} file" if kind else "no model.generator.* / model.discriminator.* weights"
        raise ArtifactError(f"expected an anomalib GANomaly checkpoint, found {found}", path)
    state = _anomalib_state(obj, path)
    networks = ForeignNetworks(
        generator={
            "encoder1": layers_under(state, "model.generator.encoder1.", path, _ANOMALIB_ENCODER_PARTS),
            "decoder": layers_under(state, "model.generator.decoder.", path, _ANOMALIB_DECODER_PARTS, decoder=True),
            "encoder2": layers_under(state, "model.generator.encoder2.", path, _ANOMALIB_ENCODER_PARTS),
        },
        discriminator={part: layers_under(state, f"model.discriminator.{part}.", path) for part in DISCRIMINATOR_PARTS},
        generator_path=path, discriminator_path=path)
    hp = _anomalib_hparams(obj)
    _check_anomalib_shape(networks, hp, path)
    options = ImportOptions(isize=isize, nc=nc, preprocess=preprocess, decision=decision)
    return imported_checkpoint(networks, ANOMALIB_PADDING, _anomalib_facts(obj, hp, path), options)


def import_file(path: str | Path, netd_path: str | Path | None = None, **options) -> Checkpoint:
    """Import whatever ``path`` is (see :func:`detect_format`); a GANomaly netG needs ``netd_path``."""
    kind = detect_format(path)
    if kind == "gedge":
        return load_checkpoint(path)
    if kind == "anomalib-ckpt":
        if netd_path is not None:
            raise ArtifactError("an anomalib checkpoint holds both networks; no netD file is needed", netd_path)
        return import_anomalib(path, **options)
    if kind == "ganomaly-netd":
        raise ArtifactError("this is a GANomaly netD file; pass the netG file first and netD second", path)
    if netd_path is None:
        raise ArtifactError("a GANomaly netG file needs its netD file (netD.pth) as well", path)
    return import_ganomaly(path, netd_path, **options)


__all__ = ["FORMATS", "UNFITTED_RULE", "detect_format", "import_anomalib", "import_file", "import_ganomaly"]
