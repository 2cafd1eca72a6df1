"""docs/SIMULATIONS.md's adversary table is what simulations.adversary_table prints
for its fixed seeds (bench/adversaries.py prints the same table)."""

from __future__ import annotations

from pathlib import Path

from simulations.adversary_table import table

DOC = Path(__file__).resolve().parents[2] / "docs" / "SIMULATIONS.md"
BEGIN, END = "<!-- adversaries:begin -->", "<!-- adversaries:end -->"


def test_doc_table_is_what_the_code_prints() -> None:
    text = DOC.read_text()
    shown = text[text.index(BEGIN) + len(BEGIN) : text.index(END)].strip()
    assert shown == table(), "regenerate it: python bench/adversaries.py"
