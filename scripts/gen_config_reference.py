"""Write docs/generated/config-reference.md from the config dataclasses (`--check`: fail if it is stale)."""

from __future__ import annotations

import sys
from pathlib import Path

from lem.config.reference import render_reference

TARGET = Path(__file__).resolve().parent.parent / "docs" / "generated" / "config-reference.md"


def main() -> int:
    text = render_reference()
    if "--check" in sys.argv:
        current = TARGET.read_text() if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET} is stale: run python scripts/gen_config_reference.py", file=sys.stderr)
            return 1
        return 0
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_text(text)
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
