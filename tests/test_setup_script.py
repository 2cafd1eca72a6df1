"""scripts/setup installs only what is missing and keeps its output short (issue 19 item 12)."""

from __future__ import annotations

import re
from pathlib import Path

SETUP = Path(__file__).resolve().parents[1] / "scripts" / "setup"


def test_apt_installs_only_missing_packages_without_upgrading_others() -> None:
    text = SETUP.read_text()
    code = "\n".join(line.split("#")[0] for line in text.splitlines())
    assert not re.search(r"apt-get\s+(dist-)?upgrade|full-upgrade", code)
    installs = re.findall(r"\$SUDO apt-get install[^\n]*", code)
    assert len(installs) == 1, installs
    assert "--no-upgrade" in installs[0] and "--no-install-recommends" in installs[0]
    # apt, pip and npm run through step(), which appends their output to the log file
    assert re.search(r'"\$@" >>"\$LOG" 2>&1', code)
    for command in ("apt-get update", "apt-get install", "pip install -q -e", "npm install"):
        (line,) = [ln for ln in code.splitlines() if command in ln and "step" in ln][:1] or [""]
        assert line, f"{command} is not run through step()"
