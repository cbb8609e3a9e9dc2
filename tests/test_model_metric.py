"""The decoder's channel metric as a property of the model: measured once per set of weights, cached on disk."""

import numpy as np
import pytest

from sdcodec.codec import autoencoders
from sdcodec.codec.rate_distortion import model_metric


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(model_metric, "_IN_PROCESS", model_metric.weakref.WeakKeyDictionary())
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from tiny_sd import make_tiny_taesd

    return autoencoders.load_autoencoder(make_tiny_taesd(tmp_path_factory.mktemp("taesd")), device="cpu")


def test_the_metric_is_measured_once_then_read_from_the_cache(tiny, cache, monkeypatch):
    heard = []
    first = model_metric.model_metric(tiny, heard.append)
    assert len(heard) == 1 and "channel metric, once for these weights" in heard[0]
    assert first.shape == (tiny.latent_channels,) * 2
    np.testing.assert_allclose(first, first.T)
    assert (np.diag(first) > 0).all() and (np.linalg.eigvalsh(first) > -1e-9).all()  # a Gram matrix
    stored = model_metric.cache_file(model_metric.weights_digest(tiny))
    assert stored.is_file() and stored.parent.parent.parent == cache

    def no_measuring(autoencoder):
        raise AssertionError("measured again")

    monkeypatch.setattr(model_metric, "measure_model_metric", no_measuring)
    model_metric._IN_PROCESS.clear()  # as a new process would
    np.testing.assert_array_equal(model_metric.model_metric(tiny, heard.append), first)
    assert len(heard) == 1  # read from the cache: nothing to say


def test_the_cache_is_keyed_by_the_weights(tiny, tmp_path):
    from tiny_sd import make_tiny_taesd

    other = autoencoders.load_autoencoder(make_tiny_taesd(tmp_path / "other", seed=1), device="cpu")
    same = autoencoders.load_autoencoder(make_tiny_taesd(tmp_path / "same", seed=0), device="cpu")
    assert model_metric.weights_digest(tiny) == model_metric.weights_digest(same)
    assert model_metric.weights_digest(tiny) != model_metric.weights_digest(other)


def test_a_damaged_or_unwritable_cache_only_costs_measuring_again(tiny, cache, monkeypatch):
    measured = model_metric.model_metric(tiny)
    stored = model_metric.cache_file(model_metric.weights_digest(tiny))
    stored.write_bytes(b"not a matrix")
    model_metric._IN_PROCESS.clear()
    np.testing.assert_array_equal(model_metric.model_metric(tiny), measured)
    blocked = cache.parent / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))  # no directory can be made under a file
    model_metric._IN_PROCESS.clear()
    np.testing.assert_array_equal(model_metric.model_metric(tiny), measured)


def test_a_file_does_not_depend_on_whether_the_cache_was_warm(tiny_taesd_spec, cache):
    from PIL import Image

    import sdcodec

    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, size=(64, 96, 3), dtype=np.uint8))
    cold = sdcodec.encode_image(image, model=tiny_taesd_spec, device="cpu", quality=40)
    assert list(cache.rglob("*.npy"))
    model_metric._IN_PROCESS.clear()
    warm = sdcodec.encode_image(image, model=tiny_taesd_spec, device="cpu", quality=40)
    assert cold == warm
