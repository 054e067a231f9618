"""harness.units: durations and comma-separated lists from the command line and settings."""

from __future__ import annotations

import math

import pytest

from harness.units import UsageError, parse_duration, parse_int_list, parse_name_list


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("10", 10.0),
        (10, 10.0),
        (2.5, 2.5),
        ("2.5", 2.5),
        ("10s", 10.0),
        ("2m", 120.0),
        ("1m30s", 90.0),
        ("1h", 3600.0),
        ("1h2m3s", 3723.0),
        (" 10S ", 10.0),
    ],
)
def test_parse_duration_accepts(value: object, seconds: float) -> None:
    result = parse_duration(value)
    assert result == pytest.approx(seconds)
    assert isinstance(result, float)


@pytest.mark.parametrize(
    "value",
    ["", "   ", "abc", "-5", -5, "0", 0, 0.0, "10x", "10ms", "s", "m", True, False,
     math.nan, math.inf, -math.inf, "nan", "inf"],
)  # fmt: skip
def test_parse_duration_rejects(value: object) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(value)
    assert repr(value) in str(info.value)  # the message names the value


def test_parse_duration_zero_only_with_zero_ok() -> None:
    assert parse_duration("0", zero_ok=True) == 0.0
    assert parse_duration(0, zero_ok=True) == 0.0
    with pytest.raises(ValueError, match="positive"):
        parse_duration("0")
    with pytest.raises(ValueError):
        parse_duration("-1", zero_ok=True)


def test_parse_duration_error_suggests_units() -> None:
    with pytest.raises(ValueError, match="10s"):
        parse_duration("ten seconds")


@pytest.mark.parametrize(
    ("text", "values"),
    [("10", (10,)), ("10,50,100", (10, 50, 100)), (" 1 , 2 ", (1, 2)), ("200,10", (200, 10))],
)
def test_parse_int_list_accepts(text: str, values: tuple[int, ...]) -> None:
    assert parse_int_list(text, "--users") == values


@pytest.mark.parametrize("text", ["", " ", "10,,20", "10,", ",10", "0", "-1", "a", "1.5", "10,x"])
def test_parse_int_list_rejects(text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_int_list(text, "--users")
    message = str(info.value)
    assert message.startswith("--users")
    assert repr(text) in message


def test_parse_int_list_names_the_bad_item() -> None:
    with pytest.raises(UsageError, match=r"'1\.5' is not a positive whole number"):
        parse_int_list("10,1.5", "--users")


def test_parse_int_list_superscript_digit_is_usage_error_not_valueerror() -> None:
    # "²".isdigit() is True but int("²") raises ValueError: the CLI catches only
    # UsageError, so `--users ²` ends in a traceback instead of exit status 2.
    with pytest.raises(UsageError):
        parse_int_list("²", "--users")


def test_usage_error_is_an_exception_not_a_value_error() -> None:
    # The CLI relies on catching UsageError for exit status 2.
    assert issubclass(UsageError, Exception)
    assert not issubclass(UsageError, ValueError)


CHOICES = ["fastapi-uvicorn", "flask-gunicorn-sync", "flask-gunicorn-gthread"]


def test_parse_name_list_keeps_order() -> None:
    assert parse_name_list("flask-gunicorn-sync, fastapi-uvicorn", "--targets", CHOICES) == (
        "flask-gunicorn-sync",
        "fastapi-uvicorn",
    )


def test_parse_name_list_deduplicates() -> None:
    result = parse_name_list(
        "fastapi-uvicorn,flask-gunicorn-sync,fastapi-uvicorn", "--targets", CHOICES
    )
    assert result == ("fastapi-uvicorn", "flask-gunicorn-sync")


def test_parse_name_list_unknown_lists_choices() -> None:
    with pytest.raises(UsageError) as info:
        parse_name_list("fastapi-uvicorn,django", "--targets", CHOICES)
    message = str(info.value)
    assert "--targets" in message
    assert "'django'" in message
    for choice in CHOICES:
        assert choice in message


@pytest.mark.parametrize("text", ["", "a,,b", ","])
def test_parse_name_list_rejects_empty_items(text: str) -> None:
    with pytest.raises(UsageError, match="--targets"):
        parse_name_list(text, "--targets", ["a", "b"])
