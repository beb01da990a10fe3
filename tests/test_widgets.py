"""FastSelect renders exactly what WTForms' own Select renders."""

from __future__ import annotations

import pytest
from wtforms import Form, SelectField
from wtforms.fields.choices import Choice
from wtforms.widgets import Select

from portal.core.widgets import FastSelect

CHOICES = [
    ("", "全部网格"),
    ("1", "第一网格"),
    ("2", 'A "quoted" & <odd> name'),
    ("3", "Grid 3"),
    ("<x>", "value needs escaping"),
]

FLAGS = [(True, "Yes"), (False, "No")]


class _Form(Form):
    plain = SelectField(choices=CHOICES, widget=Select())
    fast = SelectField(choices=CHOICES, widget=FastSelect())
    flags_plain = SelectField(choices=[(True, "Yes"), (False, "No")], coerce=bool, widget=Select())
    flags_fast = SelectField(
        choices=[(True, "Yes"), (False, "No")], coerce=bool, widget=FastSelect()
    )


@pytest.mark.parametrize("selected", ["", "1", "2", "<x>", "nothing"])
def test_same_html_as_wtforms(selected):
    form = _Form(data={"plain": selected, "fast": selected})
    expected = str(form.plain(class_="x")).replace('name="plain"', 'name="fast"')
    expected = expected.replace('id="plain"', 'id="fast"')
    assert str(form.fast(class_="x")) == expected
    assert (f'selected value="{selected}"' in expected) is (selected in ("", "1", "2"))


def test_boolean_values_and_render_kw():
    form = _Form(data={"flags_plain": True, "flags_fast": True})
    plain = str(form.flags_plain()).replace("flags_plain", "X")
    assert str(form.flags_fast()).replace("flags_fast", "X") == plain
    # An option with its own attributes goes through WTForms' own rendering.
    choice = Choice("9", "Nine", True, {"disabled": True})
    assert FastSelect.render_option(choice) == Select.render_option(choice)


def test_the_app_uses_it_for_every_select_field(app):
    assert isinstance(SelectField.widget, FastSelect)
