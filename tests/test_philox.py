"""The reference random-number generator against published known answers."""

import numpy as np
import pytest

from flambeau.backends import philox


@pytest.mark.parametrize(
    ("counter", "key", "expected"),
    # Known-answer vectors of Random123 (kat_vectors, philox4x32_10).
    [
        ([0, 0, 0, 0], (0, 0), [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
        ([0xFFFFFFFF] * 4, (0xFFFFFFFF, 0xFFFFFFFF),
         [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
        ([0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344], (0xA4093822, 0x299F31D0),
         [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]),
    ],
)
def test_philox4x32_10_known_answers(counter, key, expected):
    got = philox.philox4x32(np.array([counter], np.uint32), key)
    assert got[0].tolist() == expected


def test_stream_layout_counter_and_key_from_seed():
    seed = 0x0123456789ABCDEF
    block = philox.philox4x32(np.array([[5, 0, 0, 0]], np.uint32), (0x89ABCDEF, 0x01234567))[0]
    np.testing.assert_array_equal(philox.random_bits(4, seed, offset=20), block)
    np.testing.assert_array_equal(philox.random_bits(2, seed, offset=22), block[2:])


def test_counter_high_word_is_used():
    high = philox.philox4x32(np.array([[0, 1, 0, 0]], np.uint32), (3, 0))[0]
    np.testing.assert_array_equal(philox.random_bits(4, 3, offset=4 * 2**32), high)


@pytest.mark.parametrize(("n", "seed", "offset"), [(-1, 0, 0), (1, -1, 0), (1, 2**64, 0),
                                                   (1, 0, -4)])
def test_bad_arguments_are_refused(n, seed, offset):
    with pytest.raises(ValueError, match="need n >= 0"):
        philox.random_bits(n, seed, offset)
