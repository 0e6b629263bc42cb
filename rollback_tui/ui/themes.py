"""Cockpit themes: strict YAML files (shipped in rollback_tui/themes/, and the user's) turned into Textual Themes."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from textual.theme import Theme

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "themes"
DEFAULT_THEME = "incident-dark"
BUILTIN_NAMES = ("incident-dark", "incident-light", "high-contrast", "screen-share")

#: Cockpit colours every theme gets, unless it sets its own (`$go`, `$no-go`, `$degraded` in TCSS).
VARIABLE_DEFAULTS = {"go": "#2E9E44", "no-go": "#D33F3F", "degraded": "#C98A00"}

#: themes/incident-dark.yaml, compiled in: the usual start (default theme, no user themes) draws its first frame
#: without importing a YAML parser; the files are read right after it. A test keeps the two identical.
DEFAULT_THEME_VALUES: dict[str, Any] = {
    "name": "incident-dark", "dark": True, "primary": "#4FC1FF", "secondary": "#9CDCFE", "accent": "#E5C07B",
    "foreground": "#E6E6E6", "background": "#15181D", "surface": "#1D2127", "panel": "#2A2F37",
    "success": "#7BC96F", "warning": "#E5C07B", "error": "#FF6B6B",
    "variables": {"go": "#7BC96F", "no-go": "#FF6B6B", "degraded": "#E5C07B"},
}


def default_theme() -> Theme:
    """The default theme without reading its file (see DEFAULT_THEME_VALUES)."""
    from textual.theme import Theme

    return Theme(**{**DEFAULT_THEME_VALUES, "variables": dict(DEFAULT_THEME_VALUES["variables"])})


def user_themes_present() -> bool:
    """Does the user have theme files (which may redefine any theme, the default included)?"""
    directory = config_dir() / "themes"
    return directory.is_dir() and any(directory.glob("*.y*ml"))


def config_dir() -> Path:
    """~/.config/rollback-tui, or $ROLLBACK_TUI_CONFIG_DIR (tests), or $XDG_CONFIG_HOME/rollback-tui."""
    explicit = os.environ.get("ROLLBACK_TUI_CONFIG_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "rollback-tui"


#: The keys of a theme file: Textual's Theme fields (colours), `dark`, and extra TCSS `variables`.
COLOUR_KEYS = ("primary", "secondary", "accent", "foreground", "background", "surface", "panel", "success",
               "warning", "error", "boost")
ALLOWED_KEYS = ("name", *COLOUR_KEYS, "dark", "variables")


def _validate(data: dict[Any, Any], at: Callable[[tuple[Any, ...], bool], str]) -> list[str]:
    """Strict checks of a theme mapping (no coercion, unknown keys refused); `at(path, key)` gives file:line:col.

    Hand-written rather than a pydantic model: the cockpit loads themes before its first frame, and this keeps
    pydantic's import and model build (~100 ms here) out of start-up."""
    from textual.color import Color, ColorParseError

    problems = []
    for key in data:
        if key not in ALLOWED_KEYS:
            problems.append(f"{at((key,), True)}: {key}: unknown key; allowed: {', '.join(ALLOWED_KEYS)}")
    name = data.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
        problems.append(f"{at(('name',), False)}: name: required, lower-case letters, digits, '-' or '_'")
    if "primary" not in data:
        problems.append(f"{at((), False)}: primary: required (the main accent colour)")
    for key in COLOUR_KEYS:
        if key not in data:
            continue
        value = data[key]
        try:
            if not isinstance(value, str):
                raise ColorParseError("not a string")
            Color.parse(value)
        except ColorParseError:
            problems.append(f"{at((key,), False)}: {key}: {value!r} is not a colour (write '#RRGGBB' or a name)")
    if "dark" in data and not isinstance(data["dark"], bool):
        problems.append(f"{at(('dark',), False)}: dark: true or false")
    variables = data.get("variables", {})
    if not isinstance(variables, dict):
        problems.append(f"{at(('variables',), False)}: variables: a mapping such as {{go: '#00ff00'}}")
    else:
        for key, value in variables.items():
            if not isinstance(key, str) or not isinstance(value, str):
                problems.append(f"{at(('variables', key), False)}: variables.{key}: a string value")
    return problems


@dataclass
class ThemeLoad:
    """Themes found, and one problem line per file that was skipped."""

    themes: dict[str, Theme] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def parse_theme(text: str, path: Path) -> Theme:
    """Parse one theme file; raises ValueError with one `file:line:col: message` line per problem."""
    from textual.theme import Theme

    from rollback_tui.plan.yamlpos import YamlDocument

    doc = YamlDocument(text)
    if doc.problems:
        raise ValueError("\n".join(f"{path}:{p.line}:{p.col}: {p.message}" for p in doc.problems))
    if not isinstance(doc.data, dict):
        raise ValueError(f"{path}:1:1: a theme file is a mapping of name, primary, background, ...")

    def at(where: tuple[Any, ...], key: bool) -> str:
        line, col = doc.positions.key(where) if key else doc.positions.value(where)
        return f"{path}:{line}:{col}"

    problems = _validate(doc.data, at)
    if problems:
        raise ValueError("\n".join(problems))
    values = {key: value for key, value in doc.data.items() if key in ALLOWED_KEYS}
    return Theme(**values)


def load_themes(directories: list[Path] | None = None) -> ThemeLoad:
    """Every *.yaml theme in the shipped directory, then the user's; one bad file is reported and skipped."""
    result = ThemeLoad()
    for directory in directories if directories is not None else [SHIPPED_DIR, config_dir() / "themes"]:
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.y*ml")):
            try:
                theme = parse_theme(path.read_text(encoding="utf-8"), path)
            except (OSError, UnicodeDecodeError) as exc:
                result.problems.append(f"{path}:1:1: cannot read theme: {exc}")
                continue
            except ValueError as exc:
                result.problems.append(str(exc))
                continue
            result.themes[theme.name] = theme
    return result
