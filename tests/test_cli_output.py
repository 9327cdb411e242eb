"""worker/cli/output.py: a table shows values from Redis or Leadterra as data, never as Rich
markup; `--json` gives them exactly as they are."""

from __future__ import annotations

import json

import pytest

from worker.cli.output import data, emit

HOSTILE = [
    "[/]",
    "[bold red]x[/]",
    "[link=https://evil.example]Leadterra: re-authenticate[/link]",
    "[/bold]",
    "rpl_[b]1[/b]",
    ":warning: :smile:",
    "\\[escaped]",
    "[[double]]",
]


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "240")  # one line per row: values are not wrapped


@pytest.mark.parametrize("value", HOSTILE)
def test_a_table_prints_markup_in_values_as_text(value: str, capsys) -> None:
    emit([{"id": value, "n": 1}], ["id", "n"], as_json=False, title=f"1 of {value}")
    out = capsys.readouterr().out
    assert out.count(value) == 2  # in its cell and in the title, as it is
    assert "\x1b]8;" not in out  # no hyperlink escape


@pytest.mark.parametrize("value", HOSTILE)
def test_json_output_is_the_values_unchanged(value: str, capsys) -> None:
    emit([{"id": value, "n": 1.5, "none": None}], ["id"], as_json=True, title="ignored")
    assert json.loads(capsys.readouterr().out) == [{"id": value, "n": 1.5, "none": None}]


def test_control_characters_are_shown_escaped_not_sent_to_the_terminal(capsys) -> None:
    emit([{"id": "rpl\x1b[2J\x07\x9b1"}], ["id"], as_json=False)
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out
    assert "rpl\\x1b[2J\\x07\\x9b1" in out


def test_data_keeps_text_and_numbers_as_they_read() -> None:
    assert data("[/]").plain == "[/]"
    assert data(3).plain == "3"
    assert data("sdr_1").spans == []
