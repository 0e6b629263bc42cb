"""Small modal dialogs: a reason (with confirmation for destructive choices), a name, a yes/no, a passphrase."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from rollback_tui.termsafe import one_line, safe


class TextPrompt(ModalScreen[str | None]):
    """Ask for one line of text. Enter submits (refused while empty when required); Escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="modal.cancel")]

    def __init__(self, title: str, prompt: str, *, required: bool = True, password: bool = False,
                 placeholder: str = "", destructive: bool = False) -> None:
        super().__init__()
        self.title_text = Text(one_line(title))  # Text, not markup: plan text cannot style or link (termsafe.py)
        self.prompt = Text(safe(prompt, tabs=False))
        self.required = required
        self.password = password
        self.placeholder = one_line(placeholder)
        self.destructive = destructive

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt-box", classes="-destructive" if self.destructive else ""):
            yield Label(self.title_text, id="prompt-title")
            yield Static(self.prompt, id="prompt-text")
            yield Input(placeholder=self.placeholder, password=self.password, id="prompt-input")
            yield Static("Enter: confirm · Esc: cancel", id="prompt-help")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        value = event.value.strip() if not self.password else event.value
        if self.required and not value:
            self.query_one("#prompt-help", Static).update("A reason is required. Enter: confirm · Esc: cancel")
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmPrompt(ModalScreen[bool]):
    """Yes or no; the default is no."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
    ]

    def __init__(self, title: str, prompt: str) -> None:
        super().__init__()
        self.title_text = Text(one_line(title))
        self.prompt = Text(safe(prompt, tabs=False))

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt-box", classes="-destructive"):
            yield Label(self.title_text, id="prompt-title")
            yield Static(self.prompt, id="prompt-text")
            yield Static("y: yes · n or Esc: no", id="prompt-help")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class DetailScreen(ModalScreen[None]):
    """One item full-screen (an evidence check, a library's raw message), untruncated and unshortened;
    ←/→ move between items, Esc or the key that opened it goes back."""

    BINDINGS = [
        Binding("escape,i,q", "dismiss", "Back", id="detail.back"),
        Binding("right,down,j", "move(1)", "Next item", id="detail.next"),
        Binding("left,up,k", "move(-1)", "Previous item", id="detail.prev"),
    ]
    DEFAULT_CSS = """
    DetailScreen { background: $background; }
    DetailScreen > #detail-scroll { height: 1fr; padding: 1 2; }
    DetailScreen > #detail-help { dock: bottom; height: auto; color: $text-muted; padding: 0 2; }
    """

    def __init__(self, title: str, items: list[Text], index: int = 0) -> None:
        super().__init__()
        self.title_text = one_line(title)
        self.items = items or [Text("(nothing to show)")]
        self.index = max(0, min(index, len(self.items) - 1))

    def compose(self) -> ComposeResult:
        from textual.containers import VerticalScroll

        with VerticalScroll(id="detail-scroll"):
            yield Static(id="detail-text")
        yield Static("←/→: previous/next item · Esc: back", id="detail-help")

    def on_mount(self) -> None:
        self.show()

    def show(self) -> None:
        out = Text()
        out.append(f"{self.title_text} · item {self.index + 1} of {len(self.items)}\n\n", style="bold underline")
        out.append_text(self.items[self.index])
        self.query_one("#detail-text", Static).update(out)

    def action_move(self, delta: int) -> None:
        self.index = (self.index + delta) % len(self.items)
        self.show()


def check_detail(check: dict[str, object]) -> Text:
    """One verification in full: every field on its own line, nothing shortened (plan/host text made safe)."""
    from rollback_tui.ui.evidence import check_word

    symbol, word, _ok = check_word(check)  # type: ignore[arg-type]
    out = Text()
    out.append(f"{symbol} {word}\n\n", style="bold")
    for label, key in (("check", "check"), ("observed", "observed"), ("expected", "expected"),
                       ("action", "action"), ("category", "category"), ("read back", "readback")):
        value = check.get(key)
        if value not in (None, ""):
            out.append(f"{label}:\n", style="bold")
            out.append(f"  {safe(str(value), tabs=False)}\n\n")
    return out
