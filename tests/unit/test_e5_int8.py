"""The pure parts of the int8 question path (qa.e5_int8), with hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from qa.e5_int8 import choose_factors, fake_quant_u8, int8_columns, relative_error, smoothing


def test_u8_quantisation_keeps_zero_and_the_range_ends():
    # range [-1, 1.55]: scale 0.01, zero point 100; 0.004 rounds to 0, 0.006 to 0.01
    x = np.array([[-1.0, 0.004, 0.006, 1.55]], np.float32)
    np.testing.assert_allclose(fake_quant_u8(x), [[-1.0, 0.0, 0.01, 1.55]], atol=1e-6)


def test_u8_quantisation_of_all_positive_values_starts_at_zero():
    # the range always includes 0: [0, 2.55] → scale 0.01, zero point 0
    np.testing.assert_allclose(fake_quant_u8(np.array([[0.5, 2.55]], np.float32)), [[0.5, 2.55]], atol=1e-6)
    assert fake_quant_u8(np.zeros((1, 3), np.float32)).tolist() == [[0.0, 0.0, 0.0]]


def test_smoothing_factor_balances_activation_and_weight_ranges():
    weight = np.array([[1.0, -8.0], [0.5, 2.0]])  # column maxima 1 and 8
    act_max = np.array([16.0, 2.0])
    # α = 0.5: sqrt(16 / 1) = 4, sqrt(2 / 8) = 0.5;  α = 1: the activation maxima themselves
    np.testing.assert_allclose(smoothing(act_max, weight, 0.5), [4.0, 0.5])
    np.testing.assert_allclose(smoothing(act_max, weight, 1.0), [16.0, 2.0])


def test_int8_columns_scale_each_output_by_its_largest_weight():
    weight = np.array([[127.0, -63.5, 0.0], [2.54, 1.27, -2.54]])  # [outputs, inputs]
    codes, scales = int8_columns(weight, np.array([1.0, 1.0, 2.0]))
    # output 0: scale 1, codes 127, -64 (63.5 rounds to even), 0; output 1 smoothed to
    # [2.54, 1.27, -5.08]: scale 0.04, codes 64 (63.5 → 64), 32 (31.75), -127
    assert codes.dtype == np.int8 and codes.shape == (3, 2)
    assert codes.T.tolist() == [[127, -64, 0], [64, 32, -127]]
    np.testing.assert_allclose(scales, [1.0, 0.04], rtol=1e-6)


def test_relative_error_of_a_hand_computed_product():
    weight = np.array([[1.0, 2.0]])  # int8 scale 2/127: 2.0 is code 127, 1.0 is code 64 → 128/127
    x = [np.array([[1.0, 0.0]], np.float32)]  # exact on the u8 grid [0, 1]
    # exact product 1.0, int8 product 128/127: squared error (1/127)² over 1²
    assert relative_error(x, weight, np.ones(2)) == pytest.approx((1 / 127) ** 2, rel=1e-4)
    # only the 2.0 column used: exact in int8, so no error at all
    assert relative_error([np.array([[0.0, 1.0]], np.float32)], weight, np.ones(2)) == pytest.approx(0.0, abs=1e-12)


def test_choose_factors_tames_an_outlier_channel():
    rng = np.random.default_rng(0)
    # channel 0 of the activations is 100× the others, as layer-norm outputs can be
    inputs = [rng.normal(size=(20, 8)).astype(np.float32) * np.array([100.0] + [1.0] * 7, np.float32)]
    weight = rng.normal(size=(4, 8))
    alpha, factors, err = choose_factors(inputs, weight, alphas=(0.0, 0.5))
    plain = relative_error(inputs, weight, np.ones(8))
    assert alpha == 0.5 and err < plain / 2
    assert factors[0] > 5 * np.median(factors[1:])  # the outlier channel is divided down the most


def test_choose_factors_needs_a_grid():
    with pytest.raises(ValueError, match="alphas"):
        choose_factors([np.ones((1, 2), np.float32)], np.ones((1, 2)), alphas=())
