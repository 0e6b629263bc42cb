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
    """Looks like Textual's Footer, but draws every key in one render, on a second row when one is not enough.

    Textual's Footer mounts one widget per key and mounts them all again whenever the bindings change (each time
    the engine asks a question): ~15-30 ms before the cockpit's first frame here, and the keys appeared only on
    the frame after it. The command palette key stays at the right edge, whatever the width."""

    ALLOW_SELECT = False
    COMPONENT_CLASSES = {"keybar--key", "keybar--description", "keybar--separator"}
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: auto;
        max-height: 3;
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

    compact = reactive(False, layout=True)

    def __init__(self, *, compact: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.set_reactive(KeyBar.compact, compact)
        self.spans: list[Span] = []
        self.span_rows: list[int] = []

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, _screen: Any) -> None:
        self.refresh(layout=True)  # the keys may need one row more or less

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

    def layout(self, width: int) -> tuple[Text, list[Span], list[int]]:
        """The keys laid out in `width` columns: as many rows as they need (never one cut), the palette key at
        the first row's right edge; with the (start, end, key, enabled) span and the row of each key."""
        key_style = self.get_component_rich_style("keybar--key")
        description_style = self.get_component_rich_style("keybar--description")
        shown, palette = self.keys()
        tail = Text(no_wrap=True, end="")
        if palette is not None:
            _key, display, description, _enabled = palette
            tail.append("▏", self.get_component_rich_style("keybar--separator"))
            tail.append(display, key_style)
            tail.append(f" {description}" + ("" if self.compact else " "), description_style)
        rows: list[Text] = [Text(no_wrap=True, overflow="crop", end="")]
        spans: list[Span] = []
        span_rows: list[int] = []
        for key, display, description, enabled in shown:
            token = Text(no_wrap=True, end="")
            if self.compact:
                token.append(display, key_style)
                token.append(f" {description}" if description else "", description_style)
            else:
                token.append(f" {display} ", key_style)
                token.append(f"{description} " if description else "", description_style)
            if not enabled:
                token.stylize("dim")
            room = width - (len(tail) if len(rows) == 1 else 0)
            if len(rows[-1]) and len(rows[-1]) + len(token) > room:
                rows.append(Text(no_wrap=True, overflow="crop", end=""))
            line = rows[-1]
            start = len(line)
            line.append_text(token)
            spans.append((start, len(line), key, enabled))
            span_rows.append(len(rows) - 1)
            line.append(" ")
        if palette is not None:
            room = max(0, width - len(tail))
            rows[0].truncate(room, pad=True)
            spans.append((room + 1, room + len(tail), palette[0], palette[3]))
            span_rows.append(0)
            rows[0].append_text(tail)
        return Text("\n", end="").join(rows), spans, span_rows

    def get_content_height(self, container: Any, viewport: Any, width: int) -> int:
        return len(self.layout(width)[0].plain.split("\n"))

    def render(self) -> Text:
        text, self.spans, self.span_rows = self.layout(self.size.width)
        return text

    def on_click(self, event: events.Click) -> None:
        for (start, end, key, enabled), row in zip(self.spans, self.span_rows):
            if row == event.y and start <= event.x < end:
                if enabled:
                    self.app.simulate_key(key)
                else:
                    self.app.bell()
                return
