"""The menu configuration (ivr/menu.toml or the admin's copy), loaded and checked."""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_MENU = Path(__file__).with_name("menu.toml")

# what each keyed section's digits may do; the indicator section also takes indicator codes
ACTIONS = {
    "main": {"new", "followup", "operator", "repeat"},
    "confirm_office": {"confirm", "reenter", "repeat"},
    "indicator": {"out_of_scope", "repeat"},
    "recording": {"record", "skip", "repeat"},
    "summary": {"submit", "restart", "repeat"},
    "filed": {"repeat"},
}
REQUIRED = ("defaults", "welcome", "province", "main", "office", "agency", "confirm_office",
            "indicator", "recording", "summary", "filed", "followup", "rating")
DIGITS = set("0123456789*#")
LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(?:_[A-Za-z]+)?$")  # Asterisk's language names: fa, az, ckb, fa_IR


class MenuError(Exception):
    """The menu file cannot be used; the message names the section and the fix."""


@dataclass(frozen=True)
class Menu:
    data: dict[str, Any]
    source: str

    def section(self, name: str) -> dict[str, Any]:
        return self.data[name]

    def keys(self, name: str) -> dict[str, str]:
        return self.data[name].get("keys", {})

    def timeout_ms(self, name: str) -> int:
        return int(float(self.data[name].get("timeout", self.data["defaults"]["timeout"])) * 1000)

    def tries(self, name: str) -> int:
        return int(self.data[name].get("tries", self.data["defaults"]["tries"]))

    def default(self, key: str) -> str:
        return self.data["defaults"][key]

    def prompt_ids(self) -> set[str]:
        """Every static prompt id the menu can play (for `favad prompts` and checks)."""
        ids: set[str] = set()
        for section in self.data.values():
            for key, value in section.items():
                if key == "keys" or key in ("format", "unknown_key", "lowest", "highest"):
                    continue
                if isinstance(value, str) and not _is_number(value):
                    ids.add(value)
                elif isinstance(value, list):
                    ids.update(v for v in value if isinstance(v, str))
        return ids


def _is_number(value: str) -> bool:
    try:
        float(value)
        return True
    except ValueError:
        return False


def load_menu(path: str | None = None, indicator_codes: set[str] | None = None) -> Menu:
    """Load and validate a menu file; ``indicator_codes`` checks the indicator keys if given."""
    source = Path(path) if path else DEFAULT_MENU
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MenuError(f"menu file not found: {source}") from None
    except tomllib.TOMLDecodeError as e:
        raise MenuError(f"menu file {source} is not valid TOML: {e}") from None
    missing = [s for s in REQUIRED if s not in data]
    if missing:
        raise MenuError(f"menu file {source} lacks section(s): {', '.join(missing)}")
    for name in ("timeout", "tries"):
        try:
            if float(data["defaults"][name]) <= 0:
                raise ValueError
        except (KeyError, TypeError, ValueError):
            raise MenuError(f"[defaults] {name} must be a positive number") from None
    for section, allowed in ACTIONS.items():
        keys = data[section].get("keys", {})
        for digit, action in keys.items():
            if digit not in DIGITS:
                raise MenuError(f"[{section}.keys] {digit!r} is not a phone key (0-9, *, #)")
            ok = action in allowed or (
                section == "indicator" and (indicator_codes is None or action in indicator_codes)
            )
            if not ok:
                raise MenuError(f"[{section}.keys] {digit!r} = {action!r}: unknown action")
    for digit, language in data.get("language", {}).get("keys", {}).items():
        if digit not in DIGITS or not isinstance(language, str) or not LANGUAGE_CODE.match(language):
            raise MenuError(f"[language.keys] {digit!r} = {language!r}: a phone key and a language "
                            f"code (fa, az, ku, ar, ...)")
    if "repeat" in data["main"].get("keys", {}).values() and not data["main"].get("prompts"):
        raise MenuError("[main] needs prompts")
    return Menu(data, str(source))
