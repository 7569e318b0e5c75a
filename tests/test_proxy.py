import numpy as np
import pytest
from gedge.data.proxy import KINDS, paint_proxy, proxy_set


@pytest.mark.parametrize("shape", [(64, 64, 3), (128, 96, 3), (40, 200, 1)])
def test_every_kind_changes_the_image_and_keeps_its_shape(shape):
    rng = np.random.default_rng(0)
    image = rng.integers(100, 200, shape, dtype=np.uint8)
    for kind in KINDS:
        for seed in range(20):  # many draws: positions and sizes vary
            out = paint_proxy(image, np.random.default_rng(seed), kind)
            assert out.shape == image.shape and out.dtype == np.uint8
            assert (out != image).any(), kind


def test_proxy_set_is_seeded_and_cycles_kinds():
    images = [np.full((64, 64, 3), 150, np.uint8) for _ in range(3)]
    a, b = proxy_set(images, 2, seed=4), proxy_set(images, 2, seed=4)
    assert len(a) == 6 and all(np.array_equal(x, y) for x, y in zip(a, b))
