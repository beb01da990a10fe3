"""Both languages are complete: every message in the code has a Chinese translation."""

from __future__ import annotations

from pathlib import Path

from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "portal" / "translations" / "zh_Hans_CN" / "LC_MESSAGES"


def _extract(tmp_path: Path) -> set[str]:
    pot = tmp_path / "messages.pot"
    CommandLineInterface().run(
        [
            "pybabel",
            "-q",
            "extract",
            "-F",
            str(ROOT / "babel.cfg"),
            "-k",
            "_l",
            "-o",
            str(pot),
            str(ROOT),
        ]
    )
    with pot.open("rb") as fh:
        return {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(fh) if m.id}


def test_every_message_has_a_chinese_translation(tmp_path):
    wanted = _extract(tmp_path)
    with (CATALOGUE / "messages.po").open("rb") as fh:
        catalogue = read_po(fh)
    missing = sorted(
        msgid
        for msgid in wanted
        if msgid not in catalogue
        or not catalogue[msgid].string
        or (isinstance(catalogue[msgid].string, tuple) and not all(catalogue[msgid].string))
        or catalogue[msgid].fuzzy
    )
    assert missing == [], f"{len(missing)} messages lack a Chinese translation: {missing[:20]}"


def test_compiled_catalogue_is_up_to_date():
    po = CATALOGUE / "messages.po"
    mo = CATALOGUE / "messages.mo"
    assert mo.exists(), "run: pybabel compile -d portal/translations"
    from babel.messages.mofile import read_mo

    with mo.open("rb") as fh:
        compiled = read_mo(fh)
    with po.open("rb") as fh:
        source = read_po(fh)
    for message in source:
        if message.id and message.string and not message.fuzzy:
            assert (
                tuple(compiled[message.id].string) == tuple(message.string)
                if isinstance(message.string, tuple)
                else compiled[message.id].string == message.string
            ), message.id
