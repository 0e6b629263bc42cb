"""The footer: every key binding shown as `key description`, drawn by one widget, clickable."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import events
from textual.reactive import reactive
from textual.widget import Widget

from rollback_tui.termsafe import one_line

#: (start, end, key, enabled) of each key's cells on the line, for mouse clicks.
Span = tuple[int, int, str, bool]


class KeyBar(Widget, can_focus=False):
    """Looks like Textual's Footer, but draws the whole line in one render.

    Textual's Footer mounts one widget per key and mounts them all again whenever the bindings change (each time
    the engine asks a question): ~15-30 ms before the cockpit's first frame here, and the keys appeared only on
    the frame after it. The command palette key stays at the right edge, whatever the width."""

    ALLOW_SELECT = False
    COMPONENT_CLASSES = {"keybar--key", "keybar--description", "keybar--separator"}
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        color: $footer-foreground;
        background: $footer-background;
        .keybar--key {
            color: $footer-key-foreground;
            background: $footer-key-background;
            text-style: bold;
        }
        .keybar--description {
            color: $footer-description-foreground;
            background: $footer-description-background;
        }
        .keybar--separator {
            color: $foreground 20%;
        }
    }
    """

    compact = reactive(False)

    def __init__(self, *, compact: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.set_reactive(KeyBar.compact, compact)
        self.spans: list[Span] = []

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, _screen: Any) -> None:
        self.refresh()

    def keys(self) -> tuple[list[tuple[str, str, str, bool]], tuple[str, str, str, bool] | None]:
        """(key, key display, description, enabled) of each shown binding (one per action), and the palette's."""
        app = self.app
        shown: list[tuple[str, str, str, bool]] = []
        actions: set[str] = set()
        palette = None
        for key, (_node, binding, enabled, _tooltip) in self.screen.active_bindings.items():
            if app.ENABLE_COMMAND_PALETTE and key == app.COMMAND_PALETTE_BINDING:
                palette = (binding.key, one_line(app.get_key_display(binding)), one_line(binding.description), enabled)
            elif binding.show and binding.action not in actions:
                actions.add(binding.action)
                shown.append((binding.key, one_line(app.get_key_display(binding)), one_line(binding.description),
                              enabled))
        return shown, palette

    def render(self) -> Text:
        key_style = self.get_component_rich_style("keybar--key")
        description_style = self.get_component_rich_style("keybar--description")
        shown, palette = self.keys()
        line = Text(no_wrap=True, overflow="crop", end="")
        spans: list[Span] = []
        for key, display, description, enabled in shown:
            start = len(line)
            if self.compact:
                line.append(display, key_style)
                line.append(f" {description}" if description else "", description_style)
            else:
                line.append(f" {display} ", key_style)
                line.append(f"{description} " if description else "", description_style)
            if not enabled:
                line.stylize("dim", start)
            spans.append((start, len(line), key, enabled))
            line.append(" ")
        width = self.size.width
        if palette is not None:
            key, display, description, enabled = palette
            tail = Text(no_wrap=True, end="")
            tail.append("▏", self.get_component_rich_style("keybar--separator"))
            tail.append(display, key_style)
            tail.append(f" {description}" + ("" if self.compact else " "), description_style)
            room = max(0, width - len(tail))
            line.truncate(room, pad=True)
            spans = [(s, min(e, room), k, ok) for s, e, k, ok in spans if s < room]
            spans.append((room + 1, room + len(tail), key, enabled))
            line.append_text(tail)
        self.spans = spans
        return line

    def on_click(self, event: events.Click) -> None:
        for start, end, key, enabled in self.spans:
            if start <= event.x < end:
                if enabled:
                    self.app.simulate_key(key)
                else:
                    self.app.bell()
                return
