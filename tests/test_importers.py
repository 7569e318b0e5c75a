"""Importers for the original GANomaly files and anomalib checkpoints.

The reference networks below are small re-implementations written for these tests: they name their
modules the way the original code and anomalib do, so their ``state_dict`` has the real key layouts, and
their forward passes are the reference the imported gedge networks must reproduce.
"""

from __future__ import annotations

import pickle
from collections import OrderedDict

import numpy as np
import pytest
import torch
from gedge.core.errors import ArtifactError, ConfigError
from gedge.core.scores import SCORE_NAMES
from gedge.reference.checkpoint import load_checkpoint, save_checkpoint
from gedge.reference.decision_fit import refit_on_normals
from gedge.reference.importers import UNFITTED_RULE, detect_format, import_anomalib, import_file, import_ganomaly
from gedge.reference.model import ModelConfig, NetD, NetG
from gedge.reference.scoring import ReferenceScorer
from torch import nn

TRIPPED: list[str] = []


# ------------------------------------------------------------------------------------- reference nets

def _enc_blocks(isize, nz, nc, nf, extra, padding):
    """(stage, name, module) triples of the DCGAN encoder, named like the original code."""
    blocks = [("input", f"initial-conv-{nc}-{nf}", nn.Conv2d(nc, nf, 4, 2, padding, bias=False)),
              ("input", f"initial-relu-{nf}", nn.LeakyReLU(0.2, inplace=True))]
    for t in range(extra):
        blocks += [("extra", f"extra-layers-{t}-{nf}-conv", nn.Conv2d(nf, nf, 3, 1, 1, bias=False)),
                   ("extra", f"extra-layers-{t}-{nf}-batchnorm", nn.BatchNorm2d(nf)),
                   ("extra", f"extra-layers-{t}-{nf}-relu", nn.LeakyReLU(0.2, inplace=True))]
    size = isize // 2
    while size > 4:
        blocks += [("pyramid", f"pyramid-{nf}-{nf * 2}-conv", nn.Conv2d(nf, nf * 2, 4, 2, 1, bias=False)),
                   ("pyramid", f"pyramid-{nf * 2}-batchnorm", nn.BatchNorm2d(nf * 2)),
                   ("pyramid", f"pyramid-{nf * 2}-relu", nn.LeakyReLU(0.2, inplace=True))]
        nf, size = nf * 2, size // 2
    blocks.append(("final", f"final-{nf}-{nz}-conv", nn.Conv2d(nf, nz, 4, 1, 0, bias=False)))
    return blocks


def _dec_blocks(isize, nz, nc, nf, extra, extra_act):
    c, size = nf // 2, 4
    while size != isize:
        c, size = c * 2, size * 2
    blocks = [("latent", f"initial-{nz}-{c}-convt", nn.ConvTranspose2d(nz, c, 4, 1, 0, bias=False)),
              ("latent", f"initial-{c}-batchnorm", nn.BatchNorm2d(c)),
              ("latent", f"initial-{c}-relu", nn.ReLU(True))]
    size = 4
    while size < isize // 2:
        blocks += [("pyramid", f"pyramid-{c}-{c // 2}-convt", nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False)),
                   ("pyramid", f"pyramid-{c // 2}-batchnorm", nn.BatchNorm2d(c // 2)),
                   ("pyramid", f"pyramid-{c // 2}-relu", nn.ReLU(True))]
        c, size = c // 2, size * 2
    for t in range(extra):
        blocks += [("extra", f"extra-layers-{t}-{c}-conv", nn.Conv2d(c, c, 3, 1, 1, bias=False)),
                   ("extra", f"extra-layers-{t}-{c}-batchnorm", nn.BatchNorm2d(c)),
                   ("extra", f"extra-layers-{t}-{c}-relu", extra_act())]
    blocks += [("final", f"final-{c}-{nc}-convt", nn.ConvTranspose2d(c, nc, 4, 2, 1, bias=False)),
               ("final", f"final-{nc}-tanh", nn.Tanh())]
    return blocks


def _named(blocks):
    seq = nn.Sequential()
    for _, name, module in blocks:
        seq.add_module(name, module)
    return seq


class OrigPart(nn.Module):
    """The original code's Encoder/Decoder: one named Sequential called ``main``."""

    def __init__(self, blocks):
        super().__init__()
        self.main = _named(blocks)

    def forward(self, x):
        return self.main(x)


class OrigNetG(nn.Module):
    def __init__(self, isize, nz, nc, ngf, extra):
        super().__init__()
        self.encoder1 = OrigPart(_enc_blocks(isize, nz, nc, ngf, extra, 1))
        self.decoder = OrigPart(_dec_blocks(isize, nz, nc, ngf, extra, lambda: nn.ReLU(True)))
        self.encoder2 = OrigPart(_enc_blocks(isize, nz, nc, ngf, extra, 1))

    def forward(self, x):
        latent_i = self.encoder1(x)
        fake = self.decoder(latent_i)
        return fake, latent_i, self.encoder2(fake)


class RefNetD(nn.Module):
    """The original (and anomalib's) NetD: encoder layers re-wrapped in numbered Sequentials + Sigmoid."""

    def __init__(self, layers):
        super().__init__()
        self.features = nn.Sequential(*layers[:-1])
        self.classifier = nn.Sequential(layers[-1])
        self.classifier.add_module("Sigmoid", nn.Sigmoid())

    def forward(self, x):
        features = self.features(x)
        return self.classifier(features).view(-1, 1).squeeze(1), features


def orig_netd(isize, nc, nf, extra):
    return RefNetD([m for _, _, m in _enc_blocks(isize, 1, nc, nf, extra, 1)])


class AnoEncoder(nn.Module):
    def __init__(self, isize, nz, nc, nf, extra):
        super().__init__()
        blocks = _enc_blocks(isize, nz, nc, nf, extra, 4)
        self.input_layers = _named(b for b in blocks if b[0] == "input")
        self.extra_layers = _named(b for b in blocks if b[0] == "extra")
        self.pyramid_features = _named(b for b in blocks if b[0] == "pyramid")
        self.final_conv_layer = blocks[-1][2]

    def forward(self, x):
        return self.final_conv_layer(self.pyramid_features(self.extra_layers(self.input_layers(x))))


class AnoDecoder(nn.Module):
    def __init__(self, isize, nz, nc, nf, extra):
        super().__init__()
        blocks = _dec_blocks(isize, nz, nc, nf, extra, lambda: nn.LeakyReLU(0.2, True))
        self.latent_input = _named(b for b in blocks if b[0] == "latent")
        self.inverse_pyramid = _named(b for b in blocks if b[0] == "pyramid")
        self.extra_layers = _named(b for b in blocks if b[0] == "extra")
        self.final_layers = _named(b for b in blocks if b[0] == "final")

    def forward(self, z):
        return self.final_layers(self.extra_layers(self.inverse_pyramid(self.latent_input(z))))


class AnoGenerator(nn.Module):
    def __init__(self, isize, nz, nc, nf, extra):
        super().__init__()
        self.encoder1 = AnoEncoder(isize, nz, nc, nf, extra)
        self.decoder = AnoDecoder(isize, nz, nc, nf, extra)
        self.encoder2 = AnoEncoder(isize, nz, nc, nf, extra)

    def forward(self, x):
        latent_i = self.encoder1(x)
        fake = self.decoder(latent_i)
        return fake, latent_i, self.encoder2(fake)


class AnoModel(nn.Module):
    def __init__(self, isize, nz, nc, nf, extra):
        super().__init__()
        self.generator = AnoGenerator(isize, nz, nc, nf, extra)
        enc = AnoEncoder(isize, 1, nc, nf, extra)
        layers = []
        for child in enc.children():
            layers.extend(child.children() if isinstance(child, nn.Sequential) else [child])
        self.discriminator = RefNetD(layers)


class AnoLightning(nn.Module):
    """Only for its state_dict keys: ``model.generator.*``, ``model.discriminator.*``."""

    def __init__(self, isize, nz, nc, nf, extra):
        super().__init__()
        self.model = AnoModel(isize, nz, nc, nf, extra)


def randomise(module: nn.Module, seed: int) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            m.weight.data = torch.randn(m.weight.shape, generator=gen) * 0.1
        elif isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = 1 + 0.1 * torch.randn(n, generator=gen)
            m.bias.data = 0.1 * torch.randn(n, generator=gen)
            m.running_mean = 0.1 * torch.randn(n, generator=gen)
            m.running_var = 0.5 + torch.rand(n, generator=gen)
            m.num_batches_tracked = torch.tensor(7)
    return module.eval()


# ------------------------------------------------------------------------------------- fixtures

def record_trip(what):
    TRIPPED.append(what)


class Tripwire:
    """A foreign object in a checkpoint: unpickling it for real would record it."""

    def __init__(self):
        self.armed = True

    def __setstate__(self, state):
        record_trip("setstate")


class Evil:
    """Unpickling this for real calls a function of this module."""

    def __reduce__(self):
        return (record_trip, ("reduce",))


class FakeDictConfig:
    """Pickles like an omegaconf DictConfig: its state holds the values under ``_content``."""

    def __init__(self, content):
        self._content = content

    def __getstate__(self):
        return {"_content": self._content, "_metadata": None}


class FakeAttributeDict(dict):
    pass


def save_ganomaly(tmp_path, isize=32, nz=16, nc=3, ngf=8, extra=0, seed=0, netd_isize=None):
    netg = randomise(OrigNetG(isize, nz, nc, ngf, extra), seed)
    netd = randomise(orig_netd(netd_isize or isize, nc, ngf, extra), seed + 1)
    g_path, d_path = tmp_path / "netG.pth", tmp_path / "netD.pth"
    torch.save({"epoch": 15, "state_dict": netg.state_dict()}, g_path)
    torch.save({"epoch": 15, "state_dict": netd.state_dict()}, d_path)
    return netg, netd, g_path, d_path


def save_anomalib(tmp_path, isize=32, nz=16, ngf=8, extra=0, seed=0, hyper=None, name="model.ckpt"):
    lit = randomise(AnoLightning(isize, nz, 3, ngf, extra), seed)
    state = OrderedDict(lit.state_dict())
    state["image_threshold.value"] = torch.tensor(0.5)
    if hyper is None:
        hyper = {"input_size": (isize, isize), "n_features": ngf, "latent_vec_size": nz, "extra_layers": extra,
                 "add_final_conv_layer": True, "wadv": 1, "wcon": 50, "wenc": 1, "lr": 2e-4}
    ckpt = {"epoch": 3, "global_step": 120, "pytorch-lightning_version": "2.4.0", "state_dict": state,
            "hyper_parameters": hyper, "callbacks": {"tripwire": Tripwire()}, "optimizer_states": []}
    path = tmp_path / name
    torch.save(ckpt, path)
    return lit.model, path


def images(nc, isize, n=2, seed=5):
    return torch.rand(n, nc, isize, isize, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def assert_same(reference_g, reference_d, checkpoint, nc, isize):
    netg, netd = checkpoint.networks()
    x = images(nc, isize)
    with torch.no_grad():
        ref = reference_g(x)
        got = netg(x)
        for a, b in zip(ref, got):
            assert a.shape == b.shape
            assert torch.allclose(a, b, atol=1e-6, rtol=1e-5)
        ref_prob, ref_feat = reference_d(torch.cat([x, ref[0]]))
        logit, feat = netd(torch.cat([x, got[0]]))
        assert torch.allclose(ref_feat, feat, atol=1e-6, rtol=1e-5)
        assert torch.allclose(ref_prob, torch.sigmoid(logit), atol=1e-6, rtol=1e-5)


# ------------------------------------------------------------------------------------- GANomaly

def test_ganomaly_import_matches_original_forward(tmp_path):
    netg, netd, g_path, d_path = save_ganomaly(tmp_path)
    ckpt = import_ganomaly(g_path, d_path)
    assert ckpt.model == ModelConfig(isize=32, nc=3, nz=16, ngf=8, ndf=8, extralayers=0, first_padding=1)
    assert ckpt.preprocess.mode == "resize" and ckpt.preprocess.isize == 32 and ckpt.preprocess.channels == 3
    assert ckpt.decision.primary == "d1" and ckpt.decision.threshold_rule == UNFITTED_RULE
    assert ckpt.facts["imported_from"] == "ganomaly" and ckpt.facts["source"] == str(g_path)
    assert len(ckpt.facts["source_sha256"]) == 64 and ckpt.facts["epoch"] == 15
    assert "encoder1.main.0.weight" in ckpt.netg_state and "classifier.0.weight" in ckpt.netd_state
    assert_same(netg, netd, ckpt, 3, 32)


def test_ganomaly_variants_gray_extralayers_legacy_bare_no_batch_counter(tmp_path):
    netg = randomise(OrigNetG(64, 8, 1, 4, 1), 3)
    netd = randomise(orig_netd(64, 1, 6, 1), 4)
    g_state = OrderedDict(("module." + k, v) for k, v in netg.state_dict().items()
                          if not k.endswith("num_batches_tracked"))
    d_state = OrderedDict((k, v.double() if v.is_floating_point() else v) for k, v in netd.state_dict().items()
                          if not k.endswith("num_batches_tracked"))
    g_path, d_path = tmp_path / "g.pth", tmp_path / "d.pth"
    torch.save(g_state, g_path, _use_new_zipfile_serialization=False)
    torch.save(d_state, d_path)
    ckpt = import_ganomaly(g_path, d_path, isize=64, nc=1)
    assert ckpt.model == ModelConfig(isize=64, nc=1, nz=8, ngf=4, ndf=6, extralayers=1)
    assert ckpt.netg_state["encoder1.main.3.num_batches_tracked"].item() == 0
    assert ckpt.netd_state["features.2.weight"].dtype == torch.float32
    assert "epoch" not in ckpt.facts
    assert_same(netg, netd, ckpt, 1, 64)


def test_ganomaly_netd_with_named_layer_keys(tmp_path):
    netg, netd, g_path, d_path = save_ganomaly(tmp_path)
    names = [name for _, name, _ in _enc_blocks(32, 1, 3, 8, 0, 1)]
    renamed = OrderedDict()
    for key, value in netd.state_dict().items():
        part, index, leaf = key.split(".")
        renamed[f"{part}.{names[int(index) if part == 'features' else -1]}.{leaf}"] = value
    torch.save({"epoch": 2, "state_dict": renamed}, d_path)
    assert "features.initial-conv-3-8.weight" in renamed and "classifier.final-32-1-conv.weight" in renamed
    assert_same(netg, netd, import_ganomaly(g_path, d_path), 3, 32)


def test_imported_checkpoint_saves_and_loads(tmp_path):
    _, _, g_path, d_path = save_ganomaly(tmp_path)
    ckpt = import_ganomaly(g_path, d_path)
    save_checkpoint(ckpt, tmp_path / "model.gedge")
    back = load_checkpoint(tmp_path / "model.gedge")
    assert back.model == ckpt.model and back.facts == ckpt.facts
    assert detect_format(tmp_path / "model.gedge") == "gedge"
    assert import_file(tmp_path / "model.gedge").model == ckpt.model


def test_refit_on_normals_fits_the_rule_with_the_reference_scores(tmp_path):
    _, _, g_path, d_path = save_ganomaly(tmp_path)
    ckpt = import_ganomaly(g_path, d_path)
    normals = [(images(3, 32, n=1, seed=k)[0].permute(1, 2, 0).numpy() * 127.5 + 127.5).astype(np.uint8)
               for k in range(6)]
    fitted = refit_on_normals(ckpt, normals, primary="d2", quantile=0.5)
    tiles = ReferenceScorer(ckpt).score(np.stack(normals))
    assert fitted.decision.primary == "d2" and fitted.decision.threshold_rule != UNFITTED_RULE
    assert fitted.decision.mean == pytest.approx(float(tiles.d2.mean()), rel=1e-6)
    assert fitted.decision.std == pytest.approx(float(tiles.d2.std()), rel=1e-5)
    standardised = (tiles.d2 - fitted.decision.mean) / fitted.decision.std
    assert fitted.decision.threshold == pytest.approx(float(np.median(standardised)), rel=1e-5, abs=1e-6)
    assert fitted.facts["decision_fitted_on"] == 6 and fitted.facts["imported_from"] == "ganomaly"
    assert set(fitted.score_stats) == set(SCORE_NAMES)
    assert fitted.netg_state is ckpt.netg_state  # the weights are not touched


def test_detect_format(tmp_path):
    _, _, g_path, d_path = save_ganomaly(tmp_path)
    _, a_path = save_anomalib(tmp_path)
    assert detect_format(g_path) == "ganomaly-netg"
    assert detect_format(d_path) == "ganomaly-netd"
    assert detect_format(a_path) == "anomalib-ckpt"
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {"foo.weight": torch.zeros(2)}}, other)
    with pytest.raises(ArtifactError, match="other.pt"):
        detect_format(other)
    assert import_file(g_path, d_path).model.isize == 32
    with pytest.raises(ArtifactError, match="netD"):
        import_file(g_path)
    with pytest.raises(ArtifactError, match="netG file first"):
        import_file(d_path, g_path)


def test_swapped_or_missing_files_are_refused(tmp_path):
    _, _, g_path, d_path = save_ganomaly(tmp_path)
    with pytest.raises(ArtifactError, match="netG"):
        import_ganomaly(d_path, g_path)
    with pytest.raises(ArtifactError, match="does not exist"):
        import_ganomaly(tmp_path / "nope.pth", d_path)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_files_are_refused(tmp_path, damage):
    _, _, g_path, d_path = save_ganomaly(tmp_path)
    _, a_path = save_anomalib(tmp_path)
    for path in (g_path, a_path):
        data = path.read_bytes()
        path.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"\x80\x04not a pickle" * 50,
                          "empty": b""}[damage])
    with pytest.raises(ArtifactError, match="truncated or corrupt") as info:
        import_ganomaly(g_path, d_path)
    assert str(g_path) in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ArtifactError, match="truncated or corrupt"):
        import_anomalib(a_path)
    with pytest.raises(ArtifactError, match="truncated or corrupt"):
        detect_format(a_path)


def test_mismatched_shapes_are_refused(tmp_path):
    _, _, g_path, d_path = save_ganomaly(tmp_path, netd_isize=64)
    with pytest.raises(ArtifactError, match="discriminator is for isize 64") as info:
        import_ganomaly(g_path, d_path)
    assert str(d_path) in str(info.value)

    netg, netd, g_path, d_path = save_ganomaly(tmp_path)
    state = netg.state_dict()
    state["decoder.main.pyramid-16-batchnorm.running_mean"] = torch.zeros(5)
    torch.save({"epoch": 1, "state_dict": state}, g_path)
    with pytest.raises(ArtifactError, match=r"running_mean has shape \(5,\)") as info:
        import_ganomaly(g_path, d_path)
    assert str(g_path) in str(info.value) and "\n" not in str(info.value)

    state = {k: v for k, v in netg.state_dict().items() if not k.startswith("encoder2.")}
    other = OrigNetG(32, 20, 3, 8, 0).state_dict()  # encoder2 from a model with a larger latent
    state.update({k: v for k, v in other.items() if k.startswith("encoder2.")})
    torch.save(state, g_path)
    with pytest.raises(ArtifactError, match="encoder2"):
        import_ganomaly(g_path, d_path)

    state = netg.state_dict()
    state["encoder1.main.initial-conv-3-8.bias"] = torch.zeros(8)
    torch.save(state, g_path)
    with pytest.raises(ArtifactError, match="bias-free convolution"):
        import_ganomaly(g_path, d_path)

    reordered = OrderedDict(sorted(netg.state_dict().items()))
    torch.save(reordered, g_path)
    with pytest.raises(ArtifactError, match="out of order"):
        import_ganomaly(g_path, d_path)

    torch.save({"epoch": 1, "state_dict": netg.state_dict()}, g_path)
    with pytest.raises(ArtifactError, match="isize 32, not the requested isize 64"):
        import_ganomaly(g_path, d_path, isize=64)


def test_odd_feature_count_is_refused(tmp_path):
    _, _, g_path, d_path = save_ganomaly(tmp_path, ngf=5)
    with pytest.raises(ArtifactError, match="cannot represent: ngf and ndf must be even"):
        import_ganomaly(g_path, d_path)


# ------------------------------------------------------------------------------------- anomalib

@pytest.mark.parametrize("isize", [32, 64])
def test_anomalib_import_matches_padding4_forward(tmp_path, isize):
    TRIPPED.clear()
    model, path = save_anomalib(tmp_path, isize=isize)
    ckpt = import_anomalib(path)
    assert not TRIPPED  # the foreign object in the checkpoint was never unpickled for real
    assert ckpt.model == ModelConfig(isize=isize, nc=3, nz=16, ngf=8, ndf=8, extralayers=0, first_padding=4)
    assert ckpt.preprocess.isize == isize and ckpt.preprocess.mode == "resize"
    assert ckpt.decision.threshold_rule == UNFITTED_RULE
    assert ckpt.facts["imported_from"] == "anomalib" and ckpt.facts["epoch"] == 3
    assert ckpt.facts["anomalib_hyper_parameters"]["input_size"] == [isize, isize]
    assert_same(model.generator, model.discriminator, ckpt, 3, isize)
    netg, _ = ckpt.networks()
    assert netg.encoder1.main[0].padding == (4, 4)
    save_checkpoint(ckpt, tmp_path / "a.gedge")
    assert load_checkpoint(tmp_path / "a.gedge").model.first_padding == 4


def test_anomalib_hyper_parameters_in_foreign_containers(tmp_path):
    hyper = FakeAttributeDict(n_features=8, latent_vec_size=16)
    model, path = save_anomalib(tmp_path, hyper=hyper)
    assert import_anomalib(path).facts["anomalib_hyper_parameters"] == {"n_features": 8, "latent_vec_size": 16}
    hyper = FakeDictConfig({"model": FakeDictConfig({"input_size": [64, 64], "n_features": 8})})
    _, path = save_anomalib(tmp_path, hyper=hyper)
    with pytest.raises(ArtifactError, match="input_size 64 but the weights are for isize 32"):
        import_anomalib(path)
    _, path = save_anomalib(tmp_path, hyper={})
    assert import_anomalib(path).model.isize == 32


@pytest.mark.parametrize("hyper, message", [
    ({"input_size": [48, 48]}, "not a power of two"),
    ({"input_size": [32, 64]}, "square"),
    ({"latent_vec_size": 100}, "latent_vec_size 100 but the weights have 16"),
])
def test_anomalib_hyper_parameter_conflicts_are_refused(tmp_path, hyper, message):
    _, path = save_anomalib(tmp_path, hyper=hyper)
    with pytest.raises(ArtifactError, match=message):
        import_anomalib(path)


def test_anomalib_unsupported_variants_are_refused(tmp_path):
    _, path = save_anomalib(tmp_path, extra=1)
    with pytest.raises(ArtifactError, match="LeakyReLU"):
        import_anomalib(path)
    _, path = save_anomalib(tmp_path, isize=16)
    with pytest.raises(ArtifactError, match="below isize 32"):
        import_anomalib(path)
    _, path = save_anomalib(tmp_path)
    ckpt = torch.load(path, weights_only=False)
    del ckpt["state_dict"]["model.generator.encoder2.final_conv_layer.weight"]
    torch.save(ckpt, path)
    with pytest.raises(ArtifactError, match="final_conv_layer"):
        import_anomalib(path)
    ckpt["state_dict"]["model.generator.encoder2.final_conv_layer.weight"] = torch.zeros(16, 32, 4, 4)
    ckpt["state_dict"]["model.discriminator.classifier.0.weight"] = torch.zeros(1, 64, 4, 4)
    torch.save(ckpt, path)
    with pytest.raises(ArtifactError, match=r"classifier.0.weight has shape \(1, 64, 4, 4\)"):
        import_anomalib(path)
    _, _, g_path, _ = save_ganomaly(tmp_path)
    with pytest.raises(ArtifactError, match="expected an anomalib GANomaly checkpoint"):
        import_anomalib(g_path)


def test_restricted_reader_never_calls_foreign_code(tmp_path):
    _, path = save_anomalib(tmp_path)
    ckpt = torch.load(path, weights_only=False)
    ckpt["callbacks"]["evil"] = Evil()
    torch.save(ckpt, path)
    with open(tmp_path / "control.pkl", "wb") as f:
        pickle.dump(Evil(), f)
    TRIPPED.clear()
    import_anomalib(path)
    assert detect_format(path) == "anomalib-ckpt"
    assert not TRIPPED
    with open(tmp_path / "control.pkl", "rb") as f:
        pickle.load(f)  # the control: a plain unpickler does run it
    assert TRIPPED == ["reduce"]


# ------------------------------------------------------------------------------------- model change

@pytest.mark.parametrize("isize", [32, 64, 128])
def test_first_padding_4_keeps_the_geometry(isize):
    config = ModelConfig(isize=isize, nc=3, nz=8, ngf=4, ndf=4, first_padding=4)
    netg, netd = NetG(config).eval(), NetD(config).eval()
    with torch.no_grad():
        fake, latent_i, latent_o = netg(images(3, isize, n=1))
        logit, features = netd(fake)
    assert fake.shape == (1, 3, isize, isize)
    assert latent_i.shape == latent_o.shape == (1, 8, 1, 1)
    assert features.shape[-2:] == (4, 4) and logit.shape == (1,)


def test_first_padding_validation_and_default():
    with pytest.raises(ConfigError, match="first_padding must be 1 or 4"):
        ModelConfig(first_padding=2)
    with pytest.raises(ConfigError, match="2x2 latent"):
        ModelConfig(isize=16, first_padding=4)
    assert ModelConfig().to_dict()["first_padding"] == 1
    legacy = {"isize": 32, "nc": 3, "nz": 16, "ngf": 8, "ndf": 8, "extralayers": 0}
    assert ModelConfig.from_dict(legacy).first_padding == 1
    assert NetG(ModelConfig()).encoder1.main[0].padding == (1, 1)
