"""Cockpit themes: strict YAML files (shipped in rollback_tui/themes/, and the user's) turned into Textual Themes."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rollback_tui.plan.yamlpos import YamlDocument

if TYPE_CHECKING:
    from textual.theme import Theme

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "themes"
DEFAULT_THEME = "incident-dark"
BUILTIN_NAMES = ("incident-dark", "incident-light", "high-contrast", "screen-share")

#: Cockpit colours every theme gets, unless it sets its own (`$go`, `$no-go`, `$degraded` in TCSS).
VARIABLE_DEFAULTS = {"go": "#2E9E44", "no-go": "#D33F3F", "degraded": "#C98A00"}


def config_dir() -> Path:
    """~/.config/rollback-tui, or $ROLLBACK_TUI_CONFIG_DIR (tests), or $XDG_CONFIG_HOME/rollback-tui."""
    explicit = os.environ.get("ROLLBACK_TUI_CONFIG_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "rollback-tui"


class ThemeFile(BaseModel):
    """One theme file: Textual's Theme fields, nothing else."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    """Theme name, as given to --theme."""
    primary: str
    """Main accent colour (borders of the focused pane, titles)."""
    secondary: str | None = None
    accent: str | None = None
    foreground: str | None = None
    background: str | None = None
    surface: str | None = None
    panel: str | None = None
    success: str | None = None
    warning: str | None = None
    error: str | None = None
    boost: str | None = None
    dark: bool = True
    """Whether this is a dark theme."""
    variables: dict[str, str] = Field(default_factory=dict)
    """Extra TCSS variables, e.g. go, no-go, degraded."""

    @field_validator("primary", "secondary", "accent", "foreground", "background", "surface", "panel",
                     "success", "warning", "error", "boost")
    @classmethod
    def _colour(cls, value: str | None) -> str | None:
        if value is None:
            return value
        from textual.color import Color, ColorParseError

        try:
            Color.parse(value)
        except ColorParseError:
            raise ValueError(f"{value!r} is not a colour (write '#RRGGBB' or a colour name)") from None
        return value


@dataclass
class ThemeLoad:
    """Themes found, and one problem line per file that was skipped."""

    themes: dict[str, Theme] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def parse_theme(text: str, path: Path) -> Theme:
    """Parse one theme file; raises PlanError-style ValueError with `file:line:col: message` lines."""
    from textual.theme import Theme

    doc = YamlDocument(text)
    if doc.problems:
        raise ValueError("\n".join(f"{path}:{p.line}:{p.col}: {p.message}" for p in doc.problems))
    if not isinstance(doc.data, dict):
        raise ValueError(f"{path}:1:1: a theme file is a mapping of name, primary, background, ...")
    try:
        data = ThemeFile.model_validate(doc.data, strict=True)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            line, col = doc.positions.key(loc) if error["type"] == "extra_forbidden" else doc.positions.value(loc)
            where = ".".join(str(part) for part in loc) or "file"
            lines.append(f"{path}:{line}:{col}: {where}: {error['msg']}")
        raise ValueError("\n".join(lines)) from None
    values = data.model_dump(exclude_none=True)
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
