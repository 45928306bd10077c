"""The reference random-number generator against published known answers, and the
stream layout the contract defines on top of it."""

import numpy as np
import pytest

import flambeau
from flambeau import _random
from flambeau.backends import philox


def _blocks(first: int, count: int, seed: int) -> np.ndarray:
    """Stream elements of blocks first .. first + count - 1, from the spelled-out algorithm."""
    counter = np.zeros((count, 4), np.uint64)
    counter[:, 0] = np.arange(first, first + count, dtype=np.uint64)
    return philox.philox4x64(counter, (seed, 0)).reshape(-1).astype("<u8").view("<u4")


@pytest.mark.parametrize(
    ("counter", "key", "expected"),
    # Known-answer vectors of Random123 (kat_vectors, philox4x64_10).
    [
        ([0, 0, 0, 0], (0, 0),
         [0x16554D9ECA36314C, 0xDB20FE9D672D0FDC, 0xD7E772CEE186176B, 0x7E68B68AEC7BA23B]),
        ([2**64 - 1] * 4, (2**64 - 1, 2**64 - 1),
         [0x87B092C3013FE90B, 0x438C3C67BE8D0224, 0x9CC7D7C69CD777B6, 0xA09CAEBF594F0BA0]),
        ([0x243F6A8885A308D3, 0x13198A2E03707344, 0xA4093822299F31D0, 0x082EFA98EC4E6C89],
         (0x452821E638D01377, 0xBE5466CF34E90C6C),
         [0xA528F45403E61D95, 0x38C72DBD566E9788, 0xA5A1610E72FD18B5, 0x57BD43B5E52B7FE6]),
    ],
)
def test_philox4x64_10_known_answers(counter, key, expected):
    got = philox.philox4x64(np.array([counter], np.uint64), key)
    assert [int(w) for w in got[0]] == expected


def test_element_layout_low_half_first_key_from_seed():
    seed = 0x0123456789ABCDEF
    block = philox.philox4x64(np.array([[5, 0, 0, 0]], np.uint64), (seed, 0))[0]
    halves = [int(w) >> shift & 0xFFFFFFFF for w in block for shift in (0, 32)]
    assert philox.random_bits(8, seed, offset=40).tolist() == halves
    assert philox.random_bits(3, seed, offset=43).tolist() == halves[3:6]


@pytest.mark.parametrize(("n", "seed", "offset"), [(1, 0, 0), (8, 1, 0), (21, 77, 3),
                                                   (100, 2**64 - 1, 13), (9, 5, 2**36 + 7)])
def test_numpy_philox_stream_is_the_spelled_out_algorithm(n, seed, offset):
    first = offset // 8
    words = _blocks(first, (offset + n - 1) // 8 - first + 1, seed)
    start = offset - 8 * first
    np.testing.assert_array_equal(philox.random_bits(n, seed, offset), words[start:start + n])


@pytest.mark.parametrize(("n", "offset", "size"), [(0, 0, 8), (1, 7, 8), (30, 3, 8),
                                                   (100, 5, 16), (70001, 13, 1 << 16)])
def test_chunks_are_the_stream_in_pieces(n, offset, size):
    pieces = list(philox.chunks(n, 9, offset, size))
    assert all(0 < p.size <= size for p in pieces) and all(p.dtype == np.uint32 for p in pieces)
    whole = np.concatenate(pieces) if pieces else np.empty(0, np.uint32)
    np.testing.assert_array_equal(whole, philox.random_bits(n, 9, offset))


@pytest.mark.parametrize(("n", "seed", "offset"), [(-1, 0, 0), (1, -1, 0), (1, 2**64, 0),
                                                   (1, 0, -4)])
def test_bad_arguments_are_refused(n, seed, offset):
    with pytest.raises(ValueError, match="need n >= 0"):
        philox.random_bits(n, seed, offset)


# --- the floats the core makes of the stream ---------------------------------------------


def test_rand_float32_takes_the_top_24_bits_of_each_element():
    words = philox.random_bits(10, 42, 0)
    got = flambeau.rand(10, generator=flambeau.Generator(42)).numpy()
    np.testing.assert_array_equal(got, (words >> 8).astype(np.float32) * np.float32(2**-24))


def test_rand_float64_takes_27_and_26_bits_of_two_elements():
    words = philox.random_bits(8, 42, 0).astype(np.float64)
    got = flambeau.rand(4, generator=flambeau.Generator(42), dtype=flambeau.float64).numpy()
    expected = (np.floor(words[0::2] / 32) * 2.0**26 + np.floor(words[1::2] / 64)) * 2.0**-53
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("n", [1, 6, 7])
def test_randn_is_box_muller_with_sine_and_cosine(n):
    half = (n + 1) // 2
    g = flambeau.Generator(5)
    words = philox.random_bits(2 * half, 5, 0).astype(np.float64)
    radius = np.sqrt(-2 * np.log(1 - np.floor(words[:half] / 256) * 2.0**-24))
    angle = np.floor(words[half:] / 256) * 2.0**-24 * 2 * np.pi
    expected = np.concatenate([radius * np.cos(angle), radius * np.sin(angle)])[:n]
    got = flambeau.randn(n, generator=g).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert g.offset == 2 * half  # every element of the stream it took is used


@pytest.mark.parametrize(("shape", "offset", "low", "high"), [
    ((1000,), 0, 0.0, 1.0), ((37, 5), 13, -0.25, 0.5), ((3, 70001), 7, 1.0, 0.0)])
def test_uniform_fill_kernel_and_composition_agree_bit_for_bit(shape, offset, low, high):
    kernels = flambeau.empty(1)._k
    if getattr(kernels, "random_uniform", None) is None:
        pytest.skip("flambeau-cpu has no random_uniform kernel")
    filled = np.empty(shape, np.float32)
    kernels.random_uniform(filled, 11, offset, low, high)
    generator = flambeau.Generator(11)
    generator.offset = offset
    composed = _random._uniform_array(filled.size, np.dtype(np.float32), kernels, generator,
                                      low, high)
    assert filled.tobytes() == composed.tobytes()


def test_uniform_fill_takes_numel_elements_and_writes_views_in_place():
    base = flambeau.zeros(6, 8)
    view = base[:, 1:7:2]  # not contiguous
    g = flambeau.Generator(3)
    view.uniform_(-1, 1, generator=g)
    assert g.offset == view.numel()
    expected = flambeau.rand(6, 3, generator=flambeau.Generator(3)).numpy() * 2 - 1
    np.testing.assert_array_equal(base.numpy()[:, 1:7:2], expected)
    assert (base.numpy()[:, 0::2] == 0).all()


def test_uniform_fill_on_a_leaf_that_requires_grad_is_refused_outside_no_grad():
    weight = flambeau.nn.Parameter(flambeau.zeros(3))
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        weight.uniform_()
    with flambeau.no_grad():
        weight.uniform_()
    assert weight._version[0] == 1 and (weight.detach().numpy() != 0).all()
