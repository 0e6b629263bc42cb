"""The webhook adapter: a generic HTTP request, with Slack incoming-webhook and Jira comment presets."""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import quote

from rollback_tui.adapters.base import ActionContext, ActionResult, CheckResult, Description
from rollback_tui.adapters.httputil import expand_headers, expand_json, new_client, request_timeout, send, show_json
from rollback_tui.errors import AdapterError
from rollback_tui.plan.actions import HttpAction


def build_request(action: HttpAction) -> tuple[str, str, Any]:
    """(method, url, body) of the action, still with `${secrets.NAME}` references in place."""
    if action.preset == "slack":
        if action.text is None:
            raise AdapterError(f"http action {action.id}: the slack preset needs 'text'", hint="add text: to the action")
        return "POST", action.url, {"text": action.text}
    if action.preset == "jira_comment":
        if action.text is None or not action.issue:
            raise AdapterError(f"http action {action.id}: the jira_comment preset needs 'text' and 'issue'",
                               hint="add issue: (e.g. OPS-123) and text: to the action")
        url = f"{action.url.rstrip('/')}/rest/api/2/issue/{quote(action.issue, safe='')}/comment"
        return "POST", url, {"body": action.text}
    body = action.json_body
    if body is None and action.text is not None:
        body = {"text": action.text}
    return action.method.upper(), action.url, body


class HttpAdapter:
    """Sends one request and checks its status; a webhook cannot be read back, so verify reports the run's status."""

    kind: ClassVar[str] = "http"
    capabilities: ClassVar[frozenset[str]] = frozenset()

    def __init__(self) -> None:
        # what each action's last request got, for verify: (session dir, step, action) -> (label, status or reason)
        self._sent: dict[tuple[str, str, str], tuple[str, int | str]] = {}

    @staticmethod
    def _key(action: HttpAction, ctx: ActionContext) -> tuple[str, str, str]:
        return str(ctx.workdir), ctx.step, action.id

    async def describe(self, action: HttpAction, ctx: ActionContext) -> Description:
        method, url, body = build_request(action)
        details = [f"{method} {url}"]
        details += [f"  {name}: {value}" for name, value in action.headers.items()]  # references, not values
        if body is not None:
            details.append(f"  body {show_json(body)}")
        details.append(f"  success: status {', '.join(map(str, action.expect_status))}")
        preset = {"plain": "request", "slack": "Slack message", "jira_comment": f"Jira comment on {action.issue}"}
        risks = ["a webhook cannot be read back: verify can only report the status the request got"]
        return Description(f"{preset[action.preset]}: {method} {url}", details, risks)

    async def run(self, action: HttpAction, ctx: ActionContext) -> ActionResult:
        method, url, body = build_request(action)
        timeout = request_timeout(action.timeout)
        key = self._key(action, ctx)
        self._sent.pop(key, None)
        try:
            async with new_client(timeout) as client:
                answer = await send(ctx, client, method, ctx.expand(url), headers=expand_headers(ctx, action.headers),
                                    json_body=expand_json(ctx, body), timeout=timeout)
        except AdapterError as exc:
            self._sent[key] = (f"{method} {url}", str(exc).rsplit(": ", 1)[-1])
            raise
        self._sent[key] = (answer.label, answer.status)
        if answer.status not in action.expect_status:
            raise answer.fail(" or ".join(map(str, action.expect_status)))
        return ActionResult("ok", details={"status": answer.status, "request": answer.label})

    async def verify(self, action: HttpAction, ctx: ActionContext) -> list[CheckResult]:
        expected = f"status {' or '.join(map(str, action.expect_status))}"
        recorded = self._sent.get(self._key(action, ctx))
        if recorded is None:
            return [CheckResult(f"webhook {action.id}", expected,
                                "no request sent in this session (a webhook cannot be read back)", False,
                                readback="none")]
        label, status = recorded
        if isinstance(status, str):
            return [CheckResult(f"webhook {label}", expected,
                                f"not delivered: {status} (a webhook cannot be read back)", False, readback="none")]
        return [CheckResult(f"webhook {label}", expected,
                            f"{status} recorded when sent (a webhook cannot be read back)",
                            status in action.expect_status, readback="none")]
