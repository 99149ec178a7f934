"""The shared option checkers of galcam._validation: one policy, one message style."""

import math
from fractions import Fraction

import numpy as np
import pytest
from astropy import units as u

from galcam._validation import (
    OptionTypeError,
    check_bool,
    check_fraction,
    check_number,
    check_pair,
    check_positive,
    check_positive_int,
    check_quantity,
    is_integer,
    is_real,
    readonly,
)

NAN, INF = float("nan"), float("inf")


def test_option_type_error_is_both():
    assert issubclass(OptionTypeError, TypeError) and issubclass(OptionTypeError, ValueError)


@pytest.mark.parametrize("value", [1, 2.5, np.float32(0.5), np.int64(3), Fraction(1, 3), NAN])
def test_is_real_accepts_numbers(value):
    assert is_real(value)


@pytest.mark.parametrize("value", [True, np.bool_(False), "3", None, np.array([1.0]),
                                   np.array(2.0), 3 * u.m, 1j])
def test_is_real_refuses_the_rest(value):
    assert not is_real(value)


def test_is_integer():
    assert is_integer(3) and is_integer(np.int16(-2))
    assert not any(is_integer(v) for v in (True, np.bool_(True), 2.0, "2", np.array(2)))


def test_check_bool():
    assert check_bool(True, "flag") is True
    assert check_bool(np.bool_(False), "flag") is False
    for value in (0, 1, "yes", None):
        with pytest.raises(OptionTypeError, match=r"^flag: expected True or False, got "):
            check_bool(value, "flag")


def test_check_number():
    assert check_number(-2, "v") == -2.0 and check_number(np.float32(0.5), "v") == 0.5
    assert check_number(-INF, "v", allow_inf=True) == -INF
    for value in (NAN, INF, -INF):
        with pytest.raises(ValueError, match=r"^v: expected a finite number, got "):
            check_number(value, "v")
    with pytest.raises(ValueError, match="inf allowed"):
        check_number(NAN, "v", allow_inf=True)
    for value in (True, "1", None, [1.0]):
        with pytest.raises(OptionTypeError, match="v: expected a finite number"):
            check_number(value, "v")


def test_check_positive():
    assert check_positive(2, "x") == 2.0 and isinstance(check_positive(2, "x"), float)
    assert check_positive(0, "x", allow_zero=True) == 0.0
    assert check_positive(INF, "x", allow_inf=True) == INF
    assert check_positive(None, "x", allow_none=True) is None
    with pytest.raises(ValueError, match=r"^x: expected a finite positive number, got 0$"):
        check_positive(0, "x")
    with pytest.raises(ValueError, match="non-negative"):
        check_positive(-1, "x", allow_zero=True)
    for value in (NAN, INF, -INF):
        with pytest.raises(ValueError, match="x: expected a finite positive number"):
            check_positive(value, "x")
    with pytest.raises(ValueError, match="or inf"):
        check_positive(NAN, "x", allow_inf=True)
    for value in (True, "3", None, np.array([1.0]), 3 * u.m):
        with pytest.raises(OptionTypeError, match="x: expected"):
            check_positive(value, "x")
    with pytest.raises(ValueError, match=r"^x: expected a number of pixels, got -1$"):
        check_positive(-1, "x", expected="a number of pixels")


def test_check_fraction():
    assert check_fraction(0, "f") == 0.0 and check_fraction(1, "f") == 1.0
    assert check_fraction(np.float32(0.25), "f") == 0.25
    with pytest.raises(ValueError, match=r"^f: expected a number in \(0, 1\], got 0$"):
        check_fraction(0, "f", low_open=True)
    with pytest.raises(ValueError, match=r"^f: expected a number in \[0, 0.9\), got 0.9$"):
        check_fraction(0.9, "f", 0, 0.9, high_open=True)
    for value in (NAN, INF, -0.1, 1.1):
        with pytest.raises(ValueError, match=r"f: expected a number in \[0, 1\]"):
            check_fraction(value, "f")
    for value in (True, False, "0.5", None):
        with pytest.raises(OptionTypeError, match="f: expected a number in"):
            check_fraction(value, "f")
    # inf only where the interval is closed at inf
    assert check_fraction(INF, "f", 0, math.inf) == INF
    with pytest.raises(ValueError, match=r"\[0, inf\)"):
        check_fraction(INF, "f", 0, math.inf, high_open=True)


def test_check_positive_int():
    assert check_positive_int(np.int32(4), "n") == 4 and type(check_positive_int(4, "n")) is int
    assert check_positive_int(0, "n", allow_zero=True) == 0
    assert check_positive_int(None, "n", allow_none=True) is None
    assert check_positive_int(16, "n", minimum=16) == 16
    with pytest.raises(ValueError, match=r"^n: expected a positive integer, got 0$"):
        check_positive_int(0, "n")
    with pytest.raises(ValueError, match=r"^n: expected an integer >= 16, got 8$"):
        check_positive_int(8, "n", minimum=16)
    with pytest.raises(ValueError, match="a non-negative integer or None"):
        check_positive_int(-1, "n", allow_zero=True, allow_none=True)
    for value in (True, 2.0, "2", None):
        with pytest.raises(OptionTypeError, match="n: expected a positive integer"):
            check_positive_int(value, "n")


def test_check_pair():
    assert check_pair(3, "size") == (3, 3)
    assert check_pair((2, np.int64(5)), "size") == (2, 5)
    assert check_pair(np.array([4, 6]), "size") == (4, 6)
    assert check_pair(0, "size", minimum=0) == (0, 0)
    assert check_pair(None, "size", allow_none=True) is None
    with pytest.raises(ValueError, match=r"^size: expected a positive integer or a pair of them"):
        check_pair((0, 4), "size")
    with pytest.raises(ValueError, match="a non-negative integer or a pair"):
        check_pair(-1, "size", minimum=0)
    for value in (True, (True, 2), 2.5, (2, 3, 4), (2.0, 3.0), "ab", None):
        with pytest.raises(OptionTypeError, match="size: expected"):
            check_pair(value, "size")


def test_check_quantity():
    assert check_quantity(2 * u.arcmin, "r", u.arcsec) == 120 * u.arcsec
    assert check_quantity(2 * u.arcmin, "r", "arcsec").unit == u.arcsec
    assert check_quantity(-1 * u.deg, "pa", u.deg, positive=False) == -1 * u.deg
    assert check_quantity(0 * u.deg, "r", u.deg, allow_zero=True) == 0 * u.deg
    with pytest.raises(OptionTypeError, match=r"^r: expected an angle Quantity such as "
                                              r"5 \* u.arcsec, got 5 \(a plain number has no"):
        check_quantity(5, "r", u.arcsec)
    for value in ("5 arcsec", 5 * u.Jy, [1, 2] * u.arcsec, None):
        with pytest.raises(OptionTypeError, match="r: expected an angle Quantity"):
            check_quantity(value, "r", u.arcsec)
    for value in (0 * u.arcsec, -1 * u.arcsec, NAN * u.arcsec, INF * u.arcsec):
        with pytest.raises(ValueError, match="r: expected a positive finite angle"):
            check_quantity(value, "r", u.arcsec)
    with pytest.raises(ValueError, match="finite"):
        check_quantity(NAN * u.deg, "pa", u.deg, positive=False)
    with pytest.raises(OptionTypeError, match="convertible to Jy / beam"):
        check_quantity(1 * u.Jy, "rms", u.Jy / u.beam)


def test_readonly():
    a = np.arange(4.0)
    view = readonly(a)
    assert not view.flags.writeable and a.flags.writeable and np.shares_memory(a, view)
    with pytest.raises(ValueError, match="read-only"):
        view[0] = 1
    copy = readonly(a, copy=True)
    a[0] = 9
    assert copy[0] == 0 and not copy.flags.writeable
    q = readonly([1.0, 2.0] * u.Jy)
    assert isinstance(q, u.Quantity) and q.unit == u.Jy and not q.flags.writeable
    assert readonly(None) is None
    assert not readonly([1, 2]).flags.writeable
