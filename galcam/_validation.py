"""Checkers of keyword options, shared by every galcam tool (torch-free, imports no galcam module).

galcam's tools validate their options up front, before any heavy work (design notes,
section 5). These functions are the one place where that is spelled, with one policy:

- a bool is never a number (``True`` is not ``1``, not a size, not a fraction), and a string
  is never a number either (``"3"`` is refused, not converted);
- NaN is always refused, and so are infinities unless the caller allows them explicitly
  (``allow_inf=True``, or an interval that is closed at ``inf``);
- the message names the parameter and what was expected, then shows the value::

      n_sigma: expected a finite positive number, got -1

- a value of the wrong type raises `OptionTypeError`, which is both a `TypeError` and a
  `ValueError` (galcam's checkers raised one or the other before; both ``except`` clauses
  keep working); a value of the right type out of range raises `ValueError`.

Each checker returns the value converted to its canonical type (``float``, ``int``,
``(int, int)``, a `~astropy.units.Quantity` in the requested unit), so a tool stores what
the checker returns.

This module is private: galcam's packages import it, users do not.
"""

import math
import numbers

import numpy as np

__all__ = [
    "OptionTypeError",
    "check_bool",
    "check_fraction",
    "check_number",
    "check_pair",
    "check_positive",
    "check_positive_int",
    "check_quantity",
    "is_integer",
    "is_real",
    "readonly",
]


class OptionTypeError(TypeError, ValueError):
    """An option of the wrong type (e.g. a bool or a string where a number is expected).

    It is a `TypeError` and also a `ValueError`, so that callers catching either keep
    working.
    """


def is_real(value):
    """Whether ``value`` is a real number that is not a bool (NaN and inf included).

    Parameters
    ----------
    value : object
        Anything.

    Returns
    -------
    bool
        True for Python and numpy ints and floats (and `fractions.Fraction`); False for
        bools (Python or numpy), strings, arrays, Quantities and None.
    """
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def is_integer(value):
    """Whether ``value`` is an integer that is not a bool (Python or numpy int).

    Parameters
    ----------
    value : object
        Anything.

    Returns
    -------
    bool
        True for `int` and numpy integer scalars, False for bools, floats (even ``2.0``),
        strings and arrays.
    """
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _fmt(bound):
    """A bound as written in a message: ``0``, ``1``, ``0.9``, ``inf``."""
    return f"{bound:g}" if isinstance(bound, float) else str(bound)


def _fail(name, expected, value, *, wrong_type=False):
    cls = OptionTypeError if wrong_type else ValueError
    return cls(f"{name}: expected {expected}, got {value!r}")


def check_bool(value, name):
    """Check a flag: ``True`` or ``False`` (numpy bools too), nothing else.

    Parameters
    ----------
    value : object
        The option's value.
    name : str
        The option's name, for the message.

    Returns
    -------
    bool

    Raises
    ------
    OptionTypeError
        For anything but a bool: ``0``, ``1``, ``"yes"`` and None are refused.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise _fail(name, "True or False", value, wrong_type=True)
    return bool(value)


def check_number(value, name, *, allow_inf=False, expected=None):
    """Check a real number of any sign.

    Parameters
    ----------
    value : object
        The option's value.
    name : str
        The option's name, for the message.
    allow_inf : bool, optional
        Accept ``inf`` and ``-inf`` (NaN is always refused).
    expected : str, optional
        What the message says was expected, instead of ``"a finite number"``.

    Returns
    -------
    float

    Raises
    ------
    OptionTypeError
        For a value that is not a real number (a bool, a string, an array, a Quantity).
    ValueError
        For NaN, or an infinity not allowed.
    """
    if expected is None:
        expected = "a number (inf allowed)" if allow_inf else "a finite number"
    if not is_real(value):
        raise _fail(name, expected, value, wrong_type=True)
    x = float(value)
    if math.isnan(x) or (math.isinf(x) and not allow_inf):
        raise _fail(name, expected, value)
    return x


def check_positive(value, name, *, allow_zero=False, allow_inf=False, allow_none=False,
                   expected=None):
    """Check a positive real number.

    Parameters
    ----------
    value : object
        The option's value.
    name : str
        The option's name, for the message.
    allow_zero : bool, optional
        Accept 0 (a non-negative number).
    allow_inf : bool, optional
        Accept ``inf`` (NaN is always refused).
    allow_none : bool, optional
        Accept None (returned as is).
    expected : str, optional
        What the message says was expected, instead of e.g. ``"a finite positive number"``.

    Returns
    -------
    float or None

    Raises
    ------
    OptionTypeError
        For a value that is not a real number (a bool, a string, an array, a Quantity).
    ValueError
        For NaN, a value <= 0 (< 0 with ``allow_zero``) or an infinity not allowed.
    """
    if value is None and allow_none:
        return None
    if expected is None:
        expected = ("a " + ("" if allow_inf else "finite ")
                    + ("non-negative" if allow_zero else "positive") + " number"
                    + (" or inf" if allow_inf else "") + (" or None" if allow_none else ""))
    if not is_real(value):
        raise _fail(name, expected, value, wrong_type=True)
    x = float(value)
    if math.isnan(x) or (math.isinf(x) and not allow_inf) or x < 0 or (x == 0 and not allow_zero):
        raise _fail(name, expected, value)
    return x


def check_fraction(value, name, low=0, high=1, low_open=False, high_open=False, *,
                   expected=None):
    """Check a real number in an interval, by default ``[0, 1]``.

    Parameters
    ----------
    value : object
        The option's value.
    name : str
        The option's name, for the message.
    low, high : float, optional
        The bounds of the interval; ``high`` may be ``inf``.
    low_open, high_open : bool, optional
        Exclude the bound (``(0, 1]`` is ``low_open=True``).
    expected : str, optional
        What the message says was expected, instead of e.g. ``"a number in [0, 1]"``.

    Returns
    -------
    float

    Raises
    ------
    OptionTypeError
        For a value that is not a real number.
    ValueError
        For NaN or a value outside the interval; ``inf`` passes only when the interval is
        closed at ``high = inf``.
    """
    if expected is None:
        expected = (f"a number in {'(' if low_open else '['}{_fmt(low)}, {_fmt(high)}"
                    f"{')' if high_open else ']'}")
    if not is_real(value):
        raise _fail(name, expected, value, wrong_type=True)
    x = float(value)
    ok = not math.isnan(x)
    ok = ok and (x > low if low_open else x >= low)
    ok = ok and (x < high if high_open else x <= high)
    if not ok:
        raise _fail(name, expected, value)
    return x


def check_positive_int(value, name, *, allow_zero=False, allow_none=False, minimum=None,
                       expected=None):
    """Check a positive integer (Python or numpy int, not a bool, not a float).

    Parameters
    ----------
    value : object
        The option's value.
    name : str
        The option's name, for the message.
    allow_zero : bool, optional
        Accept 0 (a non-negative integer).
    allow_none : bool, optional
        Accept None (returned as is).
    minimum : int, optional
        Smallest value accepted, instead of 1 (or 0 with ``allow_zero``).
    expected : str, optional
        What the message says was expected, instead of e.g. ``"a positive integer"``.

    Returns
    -------
    int or None

    Raises
    ------
    OptionTypeError
        For a value that is not an integer (``2.0`` and ``True`` included).
    ValueError
        For an integer below the minimum.
    """
    if value is None and allow_none:
        return None
    if minimum is None:
        minimum = 0 if allow_zero else 1
        kind = "a non-negative integer" if allow_zero else "a positive integer"
    else:
        kind = f"an integer >= {minimum}"
    if expected is None:
        expected = kind + (" or None" if allow_none else "")
    if not is_integer(value):
        raise _fail(name, expected, value, wrong_type=True)
    if value < minimum:
        raise _fail(name, expected, value)
    return int(value)


def check_pair(value, name, *, minimum=1, allow_none=False, expected=None):
    """Check an integer or a pair of integers, such as a size ``(height, width)``.

    Parameters
    ----------
    value : object
        The option's value: an int (used for both) or a sequence of two ints.
    name : str
        The option's name, for the message.
    minimum : int, optional
        Smallest value accepted for each (1: positive; 0: non-negative).
    allow_none : bool, optional
        Accept None (returned as is).
    expected : str, optional
        What the message says was expected, instead of e.g.
        ``"a positive integer or a pair of them"``.

    Returns
    -------
    (int, int) or None

    Raises
    ------
    OptionTypeError
        For a value that is neither an int nor a sequence of two ints (bools refused).
    ValueError
        For an int below ``minimum``.
    """
    if value is None and allow_none:
        return None
    if expected is None:
        kind = {0: "a non-negative integer", 1: "a positive integer"}.get(
            minimum, f"an integer >= {minimum}")
        expected = kind + " or a pair of them" + (" or None" if allow_none else "")
    if is_integer(value):
        values = (value, value)
    else:
        try:
            values = tuple(value)
        except TypeError:
            raise _fail(name, expected, value, wrong_type=True) from None
    if len(values) != 2 or not all(is_integer(v) for v in values):
        raise _fail(name, expected, value, wrong_type=True)
    if any(v < minimum for v in values):
        raise _fail(name, expected, value)
    return int(values[0]), int(values[1])


def check_quantity(value, name, unit, *, positive=True, allow_zero=False, expected=None):
    """Check a scalar `~astropy.units.Quantity` convertible to ``unit``.

    Parameters
    ----------
    value : object
        The option's value, e.g. ``5 * u.arcsec``.
    name : str
        The option's name, for the message.
    unit : `~astropy.units.Unit` or str
        The unit it is returned in; any equivalent unit is accepted.
    positive : bool, optional
        Refuse values <= 0 (default). Non-finite values are always refused.
    allow_zero : bool, optional
        With ``positive``, accept 0 too.
    expected : str, optional
        What the message says was expected, instead of e.g.
        ``"an angle Quantity such as 5 arcsec"``.

    Returns
    -------
    `~astropy.units.Quantity`
        The value converted to ``unit``.

    Raises
    ------
    OptionTypeError
        For a plain number (the message says that a unit is needed), a Quantity in a unit
        that does not convert to ``unit``, or an array.
    ValueError
        For a non-finite value or, with ``positive``, a value <= 0.
    """
    from astropy import units as u

    unit = u.Unit(unit)
    kind = str(unit.physical_type)
    if kind in ("unknown", "dimensionless"):
        kind = f"quantity in {unit}"
    if expected is None and kind.startswith("quantity in"):
        expected = f"a Quantity convertible to {unit}"
    elif expected is None:
        article = "an" if kind[0] in "aeiou" else "a"
        example = unit.to_string()
        example = f"5 * u.{example}" if example.isidentifier() else f"5 {example}"
        expected = f"{article} {kind} Quantity such as {example}"
    if not isinstance(value, u.Quantity):
        hint = " (a plain number has no unit)" if is_real(value) else ""
        raise OptionTypeError(f"{name}: expected {expected}, got {value!r}{hint}")
    if not value.isscalar or not value.unit.is_equivalent(unit):
        raise _fail(name, expected, value, wrong_type=True)
    x = float(value.value)
    if not math.isfinite(x) or (positive and (x < 0 or (x == 0 and not allow_zero))):
        sign = ("non-negative " if allow_zero else "positive ") if positive else ""
        raise ValueError(f"{name}: expected a {sign}finite {kind}, got {value}")
    return value.to(unit)


def readonly(array, *, copy=False):
    """A read-only view (or copy) of an array, for the attributes of immutable results.

    Parameters
    ----------
    array : array-like or None
        An array (subclasses such as `~astropy.units.Quantity` are kept); None is
        returned as is.
    copy : bool, optional
        Return a read-only copy rather than a view: the result then stays unchanged even
        if the caller later writes into ``array``.

    Returns
    -------
    `numpy.ndarray` or None
        A view of ``array`` (or a copy) whose ``flags.writeable`` is False. ``array``
        itself stays writeable.
    """
    if array is None:
        return None
    out = np.array(array, copy=True, subok=True) if copy else np.asanyarray(array).view()
    out.flags.writeable = False
    return out
