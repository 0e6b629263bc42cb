"""Unleash: turn toggles off in one environment through the Admin API; verify also reads the Client API SDKs poll."""

from __future__ import annotations

import asyncio
import time
from typing import Any, ClassVar
from urllib.parse import quote

from rollback_tui.adapters.base import ActionContext, ActionResult, CheckResult, Description
from rollback_tui.adapters.httputil import new_client, request_timeout, send
from rollback_tui.errors import AdapterError, RollbackError
from rollback_tui.plan.actions import UnleashAction

_DESCRIBE_TIMEOUT = 10.0  # describe only reads; a plan review must not hang on a slow flag service
#: The strategy types the open-source server ships; only flexibleRollout has a rollout percentage.
BUILTIN_STRATEGIES = ("flexibleRollout", "default", "remoteAddress", "applicationHostname")
_ROLLOUT = "flexibleRollout"
_STRATEGY_FIELDS = ("name", "title", "disabled", "sortOrder", "constraints", "parameters", "variants", "segments")
_POLL_FIRST, _POLL_MAX = 0.1, 1.0  # Client API polling backoff (seconds); the server updates its revision every 1 s
_MAX_POLLS = 200  # a hard bound besides the time budget


def rollout_of(strategy: dict[str, Any]) -> str | None:
    """The rollout percentage (as the server stores it, a string) of a flexibleRollout strategy; None otherwise."""
    if strategy.get("name") != _ROLLOUT:
        return None
    parameters = strategy.get("parameters") if isinstance(strategy.get("parameters"), dict) else {}
    return str(parameters.get("rollout", "100"))


def _strategy_label(strategy: dict[str, Any]) -> str:
    return f"{strategy.get('name')} {strategy.get('id')}" if strategy.get("id") else str(strategy.get("name"))


def client_state(feature: dict[str, Any], zero_rollout: bool) -> tuple[bool, str]:
    """(off as the action wants it, what an SDK gets) for one feature of a Client API answer."""
    enabled = feature.get("enabled") is not False
    strategies = [s for s in feature.get("strategies") or [] if isinstance(s, dict)]
    rollouts = [r for r in (rollout_of(s) for s in strategies) if r is not None]
    seen = "enabled" if enabled else "disabled"
    if rollouts:
        seen += ", " + ", ".join(f"{_ROLLOUT} {r} %" for r in rollouts)
    off = not enabled and (not zero_rollout or all(r == "0" for r in rollouts))
    return off, seen


class UnleashAdapter:
    """Turns toggles off in one environment and sets flexibleRollout strategies to 0 %, via the Admin API."""

    kind: ClassVar[str] = "unleash"
    capabilities: ClassVar[frozenset[str]] = frozenset({"reversible"})

    def _feature_url(self, action: UnleashAction, flag: str) -> str:
        base = action.url.rstrip("/")
        return f"{base}/api/admin/projects/{quote(action.project, safe='')}/features/{quote(flag, safe='')}"

    def _env_url(self, action: UnleashAction, flag: str) -> str:
        return f"{self._feature_url(action, flag)}/environments/{quote(action.environment, safe='')}"

    def _headers(self, action: UnleashAction, ctx: ActionContext) -> dict[str, str]:
        return {"Authorization": ctx.expand(action.token), "Accept": "application/json"}

    async def _read(self, action: UnleashAction, ctx: ActionContext, client: Any, flag: str,
                    timeout: float, log: bool = True) -> tuple[bool, list[dict[str, Any]]]:
        """(enabled, strategies) of the flag in the action's environment, from GET .../features/{flag}."""
        answer = await send(ctx, client, "GET", self._feature_url(action, flag), headers=self._headers(action, ctx),
                            timeout=timeout, log=log)
        if answer.status != 200:
            raise answer.fail("200")
        body = answer.json()
        for env in body.get("environments", []) if isinstance(body, dict) else []:
            if isinstance(env, dict) and env.get("name") == action.environment:
                strategies = env.get("strategies")
                if strategies is None:  # older servers list strategies only on their own endpoint
                    strategies = await self._strategies(action, ctx, client, flag, timeout, log)
                return bool(env.get("enabled")), [s for s in strategies if isinstance(s, dict)]
        raise AdapterError(f"Unleash flag {flag!r} has no environment {action.environment!r}",
                           hint="check the environment name in the plan (the open-source server has "
                                "development and production)")

    async def _strategies(self, action: UnleashAction, ctx: ActionContext, client: Any, flag: str,
                          timeout: float, log: bool = True) -> list[dict[str, Any]]:
        answer = await send(ctx, client, "GET", f"{self._env_url(action, flag)}/strategies",
                            headers=self._headers(action, ctx), timeout=timeout, log=log)
        if answer.status != 200:
            raise answer.fail("200")
        body = answer.json()
        if not isinstance(body, list):
            raise AdapterError(f"{answer.label}: expected a list of strategies")
        return [item for item in body if isinstance(item, dict)]

    async def describe(self, action: UnleashAction, ctx: ActionContext) -> Description:
        details: list[str] = []
        risks: list[str] = []
        timeout = min(_DESCRIBE_TIMEOUT, action.timeout)
        async with new_client(timeout) as client:
            for flag in action.flags:
                try:
                    enabled, strategies = await self._read(action, ctx, client, flag, timeout, log=False)
                except RollbackError as exc:
                    details.append(f"flag {flag} in {action.environment}: enabled -> disabled (current state unknown)")
                    risks.append(f"cannot read flag {flag}: {str(exc).splitlines()[0]}")
                    continue
                details.append(f"flag {flag} in {action.environment}: "
                               f"{'enabled -> disabled' if enabled else 'already disabled'}")
                for strategy in strategies if action.zero_rollout else []:
                    rollout = rollout_of(strategy)
                    if rollout is not None and rollout != "0":
                        details.append(f"  {_strategy_label(strategy)}: {rollout} % -> 0 %")
                    elif rollout is None and strategy.get("name") not in BUILTIN_STRATEGIES:
                        risks.append(f"flag {flag}: strategy {strategy.get('name')!r} is not a built-in strategy "
                                     "of the open-source server; it is left as it is (the environment is off)")
        if action.client_token is None:
            risks.append("no client_token: verify reads the Client API with the admin token, which may not be "
                         "what your SDKs' tokens see; set client_token to the SDKs' token")
        summary = (f"Unleash {action.url}: disable {len(action.flags)} flag(s) in {action.environment}"
                   + (f" and set {_ROLLOUT} rollouts to 0 %" if action.zero_rollout else ""))
        return Description(summary, details, risks)

    async def _zero(self, action: UnleashAction, ctx: ActionContext, client: Any, flag: str,
                    timeout: float) -> list[str]:
        zeroed = []
        for strategy in await self._strategies(action, ctx, client, flag, timeout):
            rollout = rollout_of(strategy)
            if rollout is None or rollout == "0":
                continue
            # PUT replaces the whole strategy: send back everything it had, with only the rollout changed
            body = {name: strategy[name] for name in _STRATEGY_FIELDS if strategy.get(name) is not None}
            body["parameters"] = {**(strategy.get("parameters") or {}), "rollout": "0"}
            url = f"{self._env_url(action, flag)}/strategies/{quote(str(strategy.get('id')), safe='')}"
            answer = await send(ctx, client, "PUT", url, headers=self._headers(action, ctx), json_body=body,
                                timeout=timeout)
            if answer.status not in (200, 201, 204):
                raise answer.fail("200")
            ctx.log(f"flag {flag}: {_strategy_label(strategy)} rollout {rollout} % -> 0 %")
            zeroed.append(str(strategy.get("id")))
        return zeroed

    async def run(self, action: UnleashAction, ctx: ActionContext) -> ActionResult:
        timeout = request_timeout(action.timeout)
        done: dict[str, Any] = {}
        errors: list[str] = []
        async with new_client(timeout) as client:
            for flag in action.flags:  # keep going: every flag turned off counts in an incident
                try:
                    answer = await send(ctx, client, "POST", f"{self._env_url(action, flag)}/off",
                                        headers=self._headers(action, ctx), timeout=timeout)
                    if answer.status not in (200, 202, 204):
                        raise answer.fail("200")
                    ctx.log(f"flag {flag}: disabled in {action.environment}")
                    zeroed = await self._zero(action, ctx, client, flag, timeout) if action.zero_rollout else []
                    done[flag] = {"disabled": True, "strategies_zeroed": zeroed}
                except RollbackError as exc:
                    errors.append(f"flag {flag}: {exc}")
                    ctx.log(f"flag {flag}: FAILED: {str(exc).splitlines()[0]}", stream="stderr")
        if errors:
            return ActionResult("failed", error="\n".join(errors), details={"flags": done})
        return ActionResult("ok", details={"flags": done})

    async def verify(self, action: UnleashAction, ctx: ActionContext) -> list[CheckResult]:
        timeout = request_timeout(max(action.timeout, 5.0))
        checks: list[CheckResult] = []
        admin_off = True
        async with new_client(timeout) as client:
            for flag in action.flags:
                try:
                    enabled, strategies = await self._read(action, ctx, client, flag, timeout)
                except RollbackError as exc:
                    checks.append(CheckResult(f"unleash {flag} in {action.environment}", "disabled",
                                              f"unreadable: {str(exc).splitlines()[0]}", False))
                    admin_off = False
                    continue
                checks.append(CheckResult(f"unleash {flag} in {action.environment}", "disabled",
                                          "enabled" if enabled else "disabled", not enabled))
                admin_off = admin_off and not enabled
                for strategy in strategies if action.zero_rollout else []:
                    rollout = rollout_of(strategy)
                    if rollout is not None:
                        checks.append(CheckResult(f"unleash {flag} {_strategy_label(strategy)}", "rollout 0 %",
                                                  f"rollout {rollout} %", rollout == "0"))
                        admin_off = admin_off and rollout == "0"
            # the Client API can only come round to what the Admin API says: wait for it only when that is off
            checks += await ClientView(action, ctx, client, timeout).checks(
                wait=action.client_wait if admin_off else 0.0)
        return checks


class ClientView:
    """What SDKs get from `GET /api/client/features`: polled with If-None-Match until it agrees, within a budget."""

    def __init__(self, action: UnleashAction, ctx: ActionContext, client: Any, timeout: float) -> None:
        self.action, self.ctx, self.client, self.timeout = action, ctx, client, timeout
        self.url = f"{action.url.rstrip('/')}/api/client/features?environment={quote(action.environment, safe='')}"
        self.etag: str | None = None
        self.body: dict[str, Any] | None = None

    def _headers(self) -> dict[str, str]:
        token = self.action.client_token or self.action.token
        headers = {"Authorization": self.ctx.expand(token), "Accept": "application/json",
                   "Unleash-AppName": "rollback-tui-verify"}
        if self.etag:
            headers["If-None-Match"] = self.etag
        return headers

    async def _poll(self) -> dict[str, Any]:
        """One read; a 304 (revision unchanged) keeps the previous answer."""
        answer = await send(self.ctx, self.client, "GET", self.url, headers=self._headers(), timeout=self.timeout)
        if answer.status == 304 and self.body is not None:
            return self.body
        if answer.status != 200:
            raise answer.fail("200")
        body = answer.json()
        if not isinstance(body, dict) or not isinstance(body.get("features"), list):
            raise AdapterError(f"{answer.label} -> 200: not a Client API answer (no 'features' list): "
                               f"{answer.snippet()!r}", hint="check that the URL points at the Unleash server")
        meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
        self.etag = meta.get("etag") if isinstance(meta.get("etag"), str) else None
        self.body = body
        return body

    def _judge(self, body: dict[str, Any]) -> tuple[bool, list[CheckResult]]:
        """(final, checks): final when every flag is off, or when waiting cannot change the outcome."""
        action = self.action
        meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
        revision = f"revision {meta['revisionId']}" if "revisionId" in meta else "no revision id"
        query = body.get("query") if isinstance(body.get("query"), dict) else {}
        answered_for = query.get("environment")
        expected = "disabled" + (f", {_ROLLOUT} 0 %" if action.zero_rollout else "")
        name = "unleash {flag} Client API ({env})"
        if answered_for is not None and answered_for != action.environment:
            observed = (f"the Client API answered for environment {answered_for!r}: the client token is not a "
                        f"{action.environment!r} token")
            return True, [CheckResult(name.format(flag=flag, env=action.environment), expected, observed, False)
                          for flag in action.flags]
        features = {f.get("name"): f for f in body["features"] if isinstance(f, dict)}
        agreed, checks = True, []
        for flag in action.flags:
            feature = features.get(flag)
            if feature is None:
                off, seen = False, f"not in the answer ({revision}): is the token scoped to project {action.project!r}?"
            else:
                off, seen = client_state(feature, action.zero_rollout)
                seen += f" ({revision})"
            agreed = agreed and off
            checks.append(CheckResult(name.format(flag=flag, env=action.environment), expected, seen, off))
        return agreed, checks

    async def checks(self, wait: float) -> list[CheckResult]:
        """Poll with backoff until every flag is off as SDKs see it, or `wait` seconds have passed."""
        started = time.monotonic()
        delay = _POLL_FIRST
        for _ in range(_MAX_POLLS):
            try:
                body = await self._poll()
            except RollbackError as exc:
                return [CheckResult(f"unleash {flag} Client API ({self.action.environment})", "readable",
                                    f"unreadable: {str(exc).splitlines()[0]}", False) for flag in self.action.flags]
            final, checks = self._judge(body)
            agreed = all(check.ok for check in checks)
            elapsed = time.monotonic() - started
            if final or elapsed >= wait:
                if not agreed and not final and wait > 0:
                    for check in checks:
                        if not check.ok:
                            check.observed += f", still after {elapsed:.1f}s"
                elif agreed and elapsed >= 0.05:
                    self.ctx.log(f"Unleash Client API agrees after {elapsed:.1f}s")
                return checks
            await asyncio.sleep(min(delay, wait - elapsed))
            delay = min(delay * 2, _POLL_MAX)
        return checks
