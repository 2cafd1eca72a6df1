"""The Blender add-on's ETH amounts are parsed and shown with integers only.

The add-on runs inside Blender's Python (no ``protocol.money`` there); it once
sent ``int(settings.max_price_eth * 10**18)`` from a float property.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from unittest import mock

import pytest

ADDON = Path(__file__).resolve().parents[2] / "node" / "blender_addon" / "pictor_addon.py"


@pytest.fixture(scope="module")
def addon() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pictor_addon_under_test", ADDON)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    with mock.patch.dict(sys.modules, {"bpy": mock.MagicMock()}):  # only the money helpers run
        spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("text", "wei"),
    [("0.2", 2 * 10**17), ("1.76", 1_760_000_000_000_000_000), ("3", 3 * 10**18),
     (" .5 ETH", 5 * 10**17), ("0.000000000000000001", 1), ("0", 0)],
)  # fmt: skip
def test_eth_text_is_parsed_exactly(addon: ModuleType, text: str, wei: int) -> None:
    assert addon.eth_text_to_wei(text) == wei
    assert addon.eth_text_to_wei(addon.wei_to_eth_text(wei).removesuffix(" ETH")) == wei


@pytest.mark.parametrize("text", ["", ".", "2.5x", "-1", "1e18", "0.0000000000000000001", "1,5"])
def test_what_is_not_an_amount_is_refused(addon: ModuleType, text: str) -> None:
    with pytest.raises(ValueError):
        addon.eth_text_to_wei(text)
