"""Action models: one `kind` per adapter, a discriminated union the runner dispatches on."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, Field, WithJsonSchema, field_validator, model_validator

from rollback_tui.plan.types import LINE_MAX, NAME_MAX, TEXT_MAX, Duration, Strict
from rollback_tui.plan.waves import Waves

SECRET_REF = re.compile(r"\$\{secrets\.[A-Za-z_][A-Za-z0-9_-]*\}")
_CREDENTIAL_HEADERS = {"authorization", "proxy-authorization", "x-api-key", "api-key", "x-auth-token", "cookie"}


def require_secret_ref(value: str | None) -> str | None:
    """A credential field must reference a secret, never hold the value inline."""
    if value is not None and not SECRET_REF.search(value):
        raise ValueError("inline secret: write a reference such as '${secrets.NAME}' and declare NAME under 'secrets:'")
    return value


def check_headers(headers: dict[str, str]) -> dict[str, str]:
    """Credential headers must take their value from a secret reference."""
    for name, value in headers.items():
        if name.lower() in _CREDENTIAL_HEADERS and not SECRET_REF.search(value):
            raise ValueError(
                f"inline secret in header {name!r}: write '${{secrets.NAME}}' and declare NAME under 'secrets:'"
            )
    return headers


SecretRef = Annotated[
    str,
    AfterValidator(require_secret_ref),
    WithJsonSchema({"type": "string", "pattern": SECRET_REF.pattern, "description": "A `${secrets.NAME}` reference."}),
]


class Retry(Strict):
    """How an action is retried automatically before the operator is asked."""

    attempts: int = Field(1, ge=1, le=20)
    """Total attempts, the first included."""
    delay: Duration = 2.0
    """Pause between attempts (at most 7 days)."""


class ActionBase(Strict):
    """Fields every action has."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=NAME_MAX)
    """Unique name of the action within its step."""
    description: str = Field("", max_length=TEXT_MAX)
    """What the action does, in the operator's words (shown in the plan review)."""
    timeout: Duration = 300.0
    """The action is cancelled (and its processes killed) after this long (at most 7 days)."""
    retry: Retry = Field(default_factory=Retry)
    """Automatic retries before the operator is asked."""
    manual: bool = False
    """A manual procedure: the runner shows it and the operator confirms it was done by hand."""
    after_decision: bool = False
    """Run only once the step's go is given (at step 7, once the validation is approved too): for a notice that
    announces the decision, which must not go out before it is taken. Its result is recorded; it is not part of
    the evidence of the go/no-go it follows."""


# ---------------------------------------------------------------- generic


class ShellAction(ActionBase):
    """A local command. An argv list by default, so variables are never interpreted by a shell."""

    kind: Literal["shell"]
    argv: list[str] | None = None
    """The command as an argument list."""
    command: str | None = None
    """A command line for `sh -c`; only with `shell: true`."""
    shell: bool = False
    """Run `command` through `sh -c` (variables then reach a shell: listed as a risk)."""
    cwd: str | None = None
    """Working directory."""
    env: dict[str, str] = Field(default_factory=dict)
    """Extra environment variables (may reference secrets)."""
    expect_exit: int = Field(0, ge=0, le=255)
    """Exit status that counts as success."""
    verify_argv: list[str] | None = None
    """Optional read-back command whose success proves the state."""

    @model_validator(mode="after")
    def _one_form(self) -> ShellAction:
        if self.shell:
            if not self.command or self.argv:
                raise ValueError("with 'shell: true' give 'command' (a string) and no 'argv'")
        elif self.command is not None:
            raise ValueError("'command' runs through a shell: add 'shell: true', or give 'argv' as a list")
        elif not self.argv:
            raise ValueError("give 'argv' (a list of arguments)")
        return self


class SshAction(ActionBase):
    """A command on every host of a host group, with bounded concurrency and a result per host."""

    kind: Literal["ssh"]
    group: str
    """Name of a host group under `host_groups:`."""
    command: str
    """The remote command line (the remote shell interprets it)."""
    expect_exit: int = Field(0, ge=0, le=255)
    """Exit status that counts as success on a host."""
    concurrency: int | None = Field(None, ge=1, le=500)
    """Overrides the host group's concurrency."""
    verify_command: str | None = None
    """Optional read-back command run on every host by `verify`."""
    waves: Waves | None = None
    """Run the command in waves (a canary, then fixed-size waves) with a go / no-go or a pause between them and a
    failure budget over the whole action: `{size: 10, first: 1, failure_budget: 0, between: decision}`."""


_ANSIBLE_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
_MODULE_NAME = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"


class AnsibleAction(ActionBase):
    """A playbook, or one module ad hoc, run by ansible-runner on a host group or an inventory; a result per host."""

    kind: Literal["ansible"]
    playbook: str | None = None
    """Playbook path, relative to the plan's folder (it must stay inside it; symlinks are resolved and checked)."""
    module: str | None = Field(None, pattern=_MODULE_NAME, max_length=NAME_MAX)
    """Instead of a playbook: one module run ad hoc, e.g. `command`, `ansible.builtin.service`."""
    args: str = Field("", max_length=TEXT_MAX)
    """The ad hoc module's arguments (no secrets here: they would be on the command line; put them in
    `extra_vars` and write `{{ name }}`)."""
    hosts: str | None = None
    """A host group under `host_groups:`: its hosts, user, port, key and known_hosts become the inventory."""
    inventory: str | None = None
    """Instead of `hosts`: an inventory file or folder, relative to the plan's folder."""
    pattern: str = Field("all", min_length=1, max_length=LINE_MAX)
    """With `inventory`: the ad hoc host pattern (a playbook's plays name their own hosts)."""
    extra_vars: dict[Annotated[str, Field(pattern=_ANSIBLE_NAME)], Any] = Field(default_factory=dict)
    """Extra variables; values may reference secrets (`${secrets.NAME}`): they reach Ansible in a 0600 file,
    never on its command line, and are masked in its output."""
    forks: int | None = Field(None, ge=1, le=500)
    """Hosts worked on at once (default: the host group's concurrency, or Ansible's 5 with an inventory)."""
    become: bool = False
    """Run the tasks with privilege escalation (`--become`)."""
    become_user: str | None = Field(None, max_length=NAME_MAX)
    """The user to become (default root)."""
    check_review: bool = False
    """Run the playbook with `--check --diff` for the plan review and show what it would change there (only
    what supports check mode is predicted; a `command` task is skipped in check mode)."""
    python_interpreter: str | None = Field(None, max_length=LINE_MAX)
    """`ansible_python_interpreter` of the hosts (default: Ansible's discovery)."""
    waves: Waves | None = None
    """With `hosts:` (a host group): run in waves as an `ssh` action does (each wave is `--limit` of its hosts)."""
    verify_module: str = Field("command", pattern=_MODULE_NAME, max_length=NAME_MAX)
    """Module of the read-back run by `verify` on every host."""
    verify_args: str | None = Field(None, max_length=TEXT_MAX)
    """Arguments of the read-back, e.g. `test -f /etc/app/v1.4.2`; without it nothing is read back (unverified)."""

    @model_validator(mode="after")
    def _one_form(self) -> AnsibleAction:
        if (self.playbook is None) == (self.module is None):
            raise ValueError("give exactly one of 'playbook' (a path) or 'module' (ad hoc, with 'args')")
        if self.args and self.module is None:
            raise ValueError("'args' belongs to an ad hoc 'module'; a playbook's tasks carry their own arguments")
        if (self.hosts is None) == (self.inventory is None):
            raise ValueError("give exactly one of 'hosts' (a host group) or 'inventory' (a file or folder)")
        for name in ("args", "verify_args", "pattern"):
            if SECRET_REF.search(getattr(self, name) or ""):
                raise ValueError(f"'{name}' would put a secret on ansible's command line: put it in 'extra_vars' "
                                 "and write '{{ name }}' where it is used")
        if self.waves is not None and self.hosts is None:
            raise ValueError("'waves' needs 'hosts' (a host group): the hosts of an inventory are not known before "
                             "ansible reads it")
        if self.check_review and self.playbook is None:
            raise ValueError("'check_review' runs a playbook with --check --diff; an ad hoc module has none")
        return self


# ---------------------------------------------------------------- flags


class FlagdAction(ActionBase):
    """Turn flags off in a flagd flag-definition file (CNCF flagd format, JSON or YAML)."""

    kind: Literal["flagd"]
    file: str
    """Path of the flagd file (`.yaml`/`.yml` is read and written as YAML, anything else as JSON)."""
    flags: list[str] = Field(min_length=1)
    """Flag keys to turn off."""
    mode: Literal["static_off", "disable", "default_off"] = "default_off"
    """`static_off`: enabled, default variant off, targeting removed (every context gets off);
    `default_off`: default variant off and fractional rules at 0 %, other targeting kept;
    `disable`: state DISABLED, so flagd returns the application's own default, not the off variant."""
    off_variant: str = "off"
    """Name of the variant that means off."""
    app_default: bool | int | float | str | None = None
    """The default value the application passes when it evaluates these flags (what flagd returns for a
    DISABLED flag or a failed evaluation). Without it, `mode: disable` cannot be verified as off."""


class UnleashAction(ActionBase):
    """Disable flags in one environment through the Unleash Admin API and set flexibleRollout rollouts to 0 %."""

    kind: Literal["unleash"]
    url: str
    """Base URL of Unleash, e.g. https://unleash.example.com."""
    project: str = "default"
    """Unleash project id."""
    environment: str
    """Unleash environment, e.g. production (the open-source server has `development` and `production`)."""
    flags: list[str] = Field(min_length=1)
    """Feature toggle names."""
    token: SecretRef
    """Admin API token, as `${secrets.NAME}`."""
    zero_rollout: bool = True
    """Also set every `flexibleRollout` strategy's rollout to 0 (the only built-in strategy with a percentage)."""
    client_token: SecretRef | None = None
    """Client API token of this environment, as `${secrets.NAME}`: verify reads what SDKs get with it."""
    client_wait: float = Field(10.0, ge=0, le=20)
    """Seconds verify waits for the Client API to agree with the Admin API (it lags by about a second)."""


class HttpFlagAction(ActionBase):
    """A generic HTTP flag API: one request turns the flag off, another reads it back."""

    kind: Literal["http_flag"]
    flag: str
    """Flag name (for the report)."""
    method: str = "PATCH"
    """Method of the disabling request."""
    url: str
    """URL of the disabling request."""
    body: Any = None
    """JSON body of the disabling request."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Headers; credentials as `${secrets.NAME}`."""
    verify_url: str | None = None
    """URL that returns the flag's state (default: `url` with GET)."""
    verify_field: str = "enabled"
    """Dotted path of the state in the JSON answer."""
    verify_equals: Any = False
    """Value that means disabled."""

    _check_headers = field_validator("headers")(classmethod(lambda cls, v: check_headers(v)))


# ---------------------------------------------------------------- code


class GitAction(ActionBase):
    """Move a deploy checkout to a tag or commit, or revert a merge commit."""

    kind: Literal["git"]
    repo: str
    """Path of the deploy checkout."""
    mode: Literal["checkout", "revert"] = "checkout"
    """`checkout` moves HEAD to `ref`; `revert` reverts `ref` (a merge commit with `mainline`)."""
    ref: str
    """Tag, branch or commit to move to (checkout) or to revert (revert)."""
    mainline: int = Field(1, ge=1, le=64)
    """Parent number kept when reverting a merge commit."""
    version_url: str | None = None
    """Optional HTTP endpoint whose answer must report the target version."""
    version_field: str | None = None
    """Dotted JSON path of the version in that answer (plain text when omitted)."""
    expect_version: str | None = None
    """Version the endpoint must report (default: `ref`)."""


class KubectlAction(ActionBase):
    """Roll a Kubernetes workload back (`rollout undo` or `set image`) and wait for it."""

    kind: Literal["kubectl"]
    resource: str
    """Workload, e.g. `deployment/checkout`."""
    namespace: str = "default"
    """Namespace."""
    mode: Literal["undo", "set_image"] = "undo"
    """`undo` (optionally to a revision) or `set_image`."""
    to_revision: int | None = Field(None, ge=0, le=2**31 - 1)
    """Revision for `rollout undo --to-revision`."""
    container: str | None = None
    """Container name for `set image`."""
    image: str | None = None
    """Image for `set image` and the expected image for verify."""
    context: str | None = None
    """kubectl context."""
    kubeconfig: str | None = None
    """kubeconfig path."""
    wait: bool = True
    """Run `rollout status` until the rollout completes."""


class HelmAction(ActionBase):
    """`helm rollback RELEASE REVISION`."""

    kind: Literal["helm"]
    release: str
    """Release name."""
    revision: int = Field(ge=0, le=2**31 - 1)
    """Revision to roll back to."""
    namespace: str = "default"
    """Namespace."""
    context: str | None = None
    """kube context."""
    wait: bool = True
    """Pass --wait."""


# ---------------------------------------------------------------- configuration


class RestoreFile(Strict):
    """One file restored from the deployment snapshot."""

    path: str
    """The live file."""
    snapshot: str
    """Its known-good copy."""


class ConfigFilesAction(ActionBase):
    """Restore files from a snapshot, keeping a backup of each current file; verify by checksum."""

    kind: Literal["config_files"]
    files: list[RestoreFile] = Field(min_length=1)
    """Files to restore."""
    backup_dir: str | None = None
    """Where the current files are copied first (default: next to each file, `.rollback-backup-<time>`)."""


class EnvFileAction(ActionBase):
    """Roll a `.env`-style file back key by key, from a snapshot file or explicit values."""

    kind: Literal["env_file"]
    path: str
    """The live `.env` file."""
    snapshot: str | None = None
    """Known-good `.env` whose keys are restored."""
    values: dict[str, str] = Field(default_factory=dict)
    """Explicit KEY: value pairs to set (may reference secrets)."""
    remove: list[str] = Field(default_factory=list)
    """Keys to delete."""


# ---------------------------------------------------------------- database


class DbSafety(Strict):
    """Backups and integrity checks around a database rollback."""

    backup: bool = True
    """Back up the database first (SQLite online backup API, pg_dump for PostgreSQL)."""
    backup_dir: str | None = None
    """Where the backup goes (default: the journal's directory)."""
    integrity_check: bool = True
    """SQLite `PRAGMA integrity_check` before and after."""
    row_count_tables: list[str] = Field(default_factory=list)
    """Tables whose row counts must be unchanged by the rollback."""


class AlembicAction(ActionBase):
    """`alembic downgrade` to a revision."""

    kind: Literal["alembic"]
    config: str
    """Path of alembic.ini (its script_location is used)."""
    url: str
    """Database URL (overrides the ini's sqlalchemy.url); password via `${secrets.NAME}`."""
    revision: str
    """Target revision id (or `base`)."""
    safety: DbSafety = Field(default_factory=DbSafety)
    """Backups and integrity checks."""


class SqlAction(ActionBase):
    """A plain SQL rollback script for SQLite or PostgreSQL."""

    kind: Literal["sql"]
    url: str
    """`sqlite:///path.db` or `postgresql://user@host:port/db`."""
    script: str
    """Path of the rollback script."""
    verify_query: str | None = None
    """Query whose first value proves the rollback."""
    verify_equals: Any = None
    """Expected value of `verify_query`."""
    safety: DbSafety = Field(default_factory=DbSafety)
    """Backups and integrity checks."""


# ---------------------------------------------------------------- infrastructure


class TerraformAction(ActionBase):
    """Terraform / OpenTofu: apply a saved plan or a previous configuration; verify with `plan -detailed-exitcode`."""

    kind: Literal["terraform"]
    binary: Literal["terraform", "tofu"] = "terraform"
    """Which tool."""
    workdir: str
    """Directory of the configuration."""
    plan_file: str | None = None
    """A saved plan to apply (preferred)."""
    var_files: list[str] = Field(default_factory=list)
    """`-var-file` arguments when applying the configuration."""


# ---------------------------------------------------------------- notify


class HttpAction(ActionBase):
    """A webhook request: notify stakeholders, comment on the ticket."""

    kind: Literal["http"]
    preset: Literal["plain", "slack", "jira_comment"] = "plain"
    """`slack` posts `{"text": text}`; `jira_comment` posts to `/rest/api/2/issue/ISSUE/comment`."""
    method: str = "POST"
    """HTTP method."""
    url: str
    """URL (for `jira_comment`, the Jira base URL)."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Headers; credentials as `${secrets.NAME}`."""
    json_body: Any = None
    """JSON body (plain preset)."""
    text: str | None = None
    """Message text (slack and jira_comment presets)."""
    issue: str | None = None
    """Jira issue key (jira_comment preset)."""
    expect_status: list[Annotated[int, Field(ge=100, le=599)]] = Field(default_factory=lambda: [200, 201, 202, 204],
                                                                     min_length=1, max_length=100)
    """Statuses that count as success."""

    _check_headers = field_validator("headers")(classmethod(lambda cls, v: check_headers(v)))


Action = Annotated[
    Union[
        ShellAction,
        SshAction,
        AnsibleAction,
        FlagdAction,
        UnleashAction,
        HttpFlagAction,
        GitAction,
        KubectlAction,
        HelmAction,
        ConfigFilesAction,
        EnvFileAction,
        AlembicAction,
        SqlAction,
        TerraformAction,
        HttpAction,
    ],
    Field(discriminator="kind"),
]

ACTION_KINDS: tuple[str, ...] = (
    "shell", "ssh", "ansible", "flagd", "unleash", "http_flag", "git", "kubectl", "helm",
    "config_files", "env_file", "alembic", "sql", "terraform", "http",
)
