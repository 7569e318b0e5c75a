import pytest
import torch
from gedge.core.errors import ConfigError
from gedge.reference.model import ModelConfig, build_networks


@pytest.mark.parametrize("isize", [16, 32, 64, 128])
def test_shapes_for_every_size(isize):
    config = ModelConfig(isize=isize, nz=20, ngf=8, ndf=12, extralayers=1)
    netg, netd = build_networks(config, seed=0)
    x = torch.randn(2, 3, isize, isize)
    fake, latent_i, latent_o = netg(x)
    assert fake.shape == x.shape
    assert latent_i.shape == latent_o.shape == (2, 20, 1, 1)
    assert fake.abs().max() <= 1.0  # Tanh output
    logit, features = netd(x)
    assert logit.shape == (2,)
    assert features.shape[2:] == (4, 4)
    # ndf is honoured by D (the original code used ngf for both)
    assert netd.features[0].out_channels == 12 and netg.encoder1.main[0].out_channels == 8


def test_initialisation_is_dcgan_and_seeded():
    config = ModelConfig(isize=32, nz=10, ngf=16, ndf=16)
    g1, _ = build_networks(config, seed=3)
    g2, _ = build_networks(config, seed=3)
    w = g1.encoder1.main[0].weight.detach()
    assert abs(float(w.std()) - 0.02) < 0.005
    bn = [m for m in g1.modules() if isinstance(m, torch.nn.BatchNorm2d)][0]
    assert abs(float(bn.weight.detach().mean()) - 1.0) < 0.01
    assert torch.equal(w, g2.encoder1.main[0].weight)


@pytest.mark.parametrize("kwargs", [{"isize": 48}, {"isize": 8}, {"isize": 1024}, {"nc": 2}, {"nz": 0},
                                    {"ngf": 7}, {"extralayers": -1}, {"residual_blur": 4}, {"residual_blur": 1},
                                    {"residual_blur": 65}, {"residual_blur": True}])
def test_invalid_config_is_a_clear_error(kwargs):
    with pytest.raises(ConfigError):
        ModelConfig(**kwargs)
