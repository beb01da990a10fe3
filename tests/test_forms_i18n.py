"""Field messages come in the user's language, for each domain's main form."""

from __future__ import annotations

import re

import pytest

CASES = [
    (
        "/places/grids/new",
        {"name": ""},
        {"zh_Hans_CN": "该字段是必填字段。", "en": "This field is required."},
    ),
    (
        "/people/new",
        {"name": "", "phone": "123"},
        {
            "zh_Hans_CN": "请输入以13–19开头的11位手机号码。",
            "en": "Enter an 11-digit mobile number starting with 13–19.",
        },
    ),
    (
        "/volunteers/mine",
        {},
        {"zh_Hans_CN": "请至少选择一种志愿者类型。", "en": "Choose at least one volunteer type."},
    ),
]


@pytest.mark.parametrize("lang", ["zh_Hans_CN", "en"])
@pytest.mark.parametrize("url, data, expected", CASES)
def test_field_messages_in_both_languages(client, auth, world, lang, url, data, expected):
    auth.login("secretary_a")
    client.post("/language", data={"lang": lang})
    response = client.post(url, data=data)
    assert response.status_code == 200
    errors = re.findall(r'class="error">([^<]*)<', response.get_data(as_text=True))
    assert expected[lang] in errors
