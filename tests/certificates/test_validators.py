"""Identity numbers (GB 11643-1999): the check character, and the masked form that is kept."""

from __future__ import annotations

import pytest

from portal.core.validators import mask_id_number, valid_id_number


@pytest.mark.parametrize(
    "number",
    ["11010519491231002X", "11010519491231002x", "110105 19491231 002X", "440524188001010014"],
)
def test_valid_numbers(number):
    assert valid_id_number(number)


@pytest.mark.parametrize(
    "number",
    [
        "",
        None,
        "110105194912310021",  # check character should be X
        "11010519490231002X",  # 31 February does not exist... nor does this check
        "11010519491231002",  # 17 characters
        "1101051949123100200",  # 19 characters
        "X1010519491231002X",
        "１１０１０５１９４９１２３１００２Ｘ",  # full-width digits
    ],
)
def test_invalid_numbers(number):
    assert not valid_id_number(number)


def test_masked_form_keeps_region_and_last_four():
    assert mask_id_number("11010519491231002x") == "110105********002X"
    assert mask_id_number("") == ""
    assert mask_id_number("123") == "***"
