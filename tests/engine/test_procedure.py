"""Scripted sessions through the whole procedure: each exit state, no-go paths, failed actions, approvals, window."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rollback_tui.engine.decisions import AutoDecisions, Decision
from rollback_tui.record.events import DecisionRequested

from .conftest import PY, Scripted, approving, of_type, run_plan, sh, simple_steps

SEED_SIGNALS = ["Rollback complete", "System restored", "Root cause analysis initiated"]


def steps_with(step_id: str, **fields: Any) -> list[dict[str, Any]]:
    steps = simple_steps()
    for step in steps:
        if step["id"] == step_id:
            step.update(fields)
    return steps


async def test_auto_completes_in_the_seeds_order(write_plan: Any, tmp_path: Path) -> None:
    result, events = await run_plan(write_plan(), AutoDecisions("olivia"), tmp_path)
    assert result.exit_state == "completed"
    kinds = [event.type for event in events]
    # nothing runs before the plan review and the execution approval
    assert kinds.index("plan_reviewed") < kinds.index("approval_given") < kinds.index("step_started")
    order = [event.step for event in of_type(events, "step_finished")]
    assert order == ["assess", "flags", "code", "configuration", "database", "infrastructure", "validate"]
    assert [e.status for e in of_type(events, "step_finished")][3:6] == ["not_applicable"] * 3
    assert [s.name for s in of_type(events, "signal")] == SEED_SIGNALS
    finished = of_type(events, "session_finished")[0]
    assert finished.scopes == {"flags": "rolled_back", "code": "rolled_back", "configuration": "not_applicable",
                               "database": "not_applicable", "infrastructure": "not_applicable"}
    approvals = of_type(events, "approval_given")
    assert [(a.gate, a.name) for a in approvals] == [("execution", "auto:devops-lead"), ("validation", "auto:tech-lead")]
    outline = of_type(events, "session_started")[0].outline
    assert [s["id"] for s in outline["steps"]][:3] == ["assess", "flags", "code"]
    assert outline["steps"][2]["actions"][0]["summary"].startswith("run ")
    assert outline["steps"][3]["applicable"] is False
    review = of_type(events, "decision_requested")
    plan_review = next(r for r in review if r.kind == "plan_review")
    assert "# Rollback Plan" in plan_review.evidence.detail
    assert of_type(events, "plan_reviewed")[0].plan_markdown_sha256


async def test_auto_stops_blocked_at_the_first_failed_verification(write_plan: Any, tmp_path: Path) -> None:
    plan = write_plan(simple_steps(code_verify=[PY, "-c", "raise SystemExit(3)"]))
    result, events = await run_plan(plan, AutoDecisions("olivia"), tmp_path)
    assert result.exit_state == "blocked"
    gate = next(r for r in of_type(events, "decision_requested") if r.kind == "gate" and r.step == "code")
    assert "go" not in gate.options and "override" in gate.options  # a failed read-back allows no plain go
    assert [v.ok for v in of_type(events, "verification") if v.step == "code"] == [False]
    assert of_type(events, "step_finished")[-1].step == "code"
    assert of_type(events, "session_finished")[0].scopes["flags"] == "rolled_back"
    assert of_type(events, "session_finished")[0].scopes["code"] == "not_rolled_back"
    assert not any(e.type == "step_started" and e.step == "validate" for e in events)


async def test_abort_before_any_scope_is_aborted(write_plan: Any, tmp_path: Path) -> None:
    source = Scripted(approving({("gate", "assess"): Decision("abort", "no rollback path: snapshot corrupt")}))
    result, events = await run_plan(write_plan(), source, tmp_path)
    assert result.exit_state == "aborted"
    assert "no rollback path" in result.message
    assert [s.name for s in of_type(events, "signal")] == ["Root cause analysis initiated"]
    assert set(of_type(events, "session_finished")[0].scopes.values()) <= {"not_rolled_back", "not_applicable"}


async def test_abort_after_flags_is_partial_with_per_scope_record(write_plan: Any, tmp_path: Path) -> None:
    source = Scripted(approving({("gate", "code"): Decision("abort", "data corruption found")}))
    result, events = await run_plan(write_plan(), source, tmp_path)
    assert result.exit_state == "partial"
    scopes = of_type(events, "session_finished")[0].scopes
    assert scopes["flags"] == "rolled_back" and scopes["code"] == "not_rolled_back"
    assert of_type(events, "step_finished")[-1].status == "aborted"
    assert "(rolled back: flags; not rolled back: code)" in result.message


async def test_abort_at_validation_with_every_scope_rolled_back_is_aborted_not_partial(
        write_plan: Any, tmp_path: Path) -> None:
    source = Scripted(approving({("gate", "validate"): Decision("abort", "validation cannot be completed")}))
    result, events = await run_plan(write_plan(), source, tmp_path)
    assert result.exit_state == "aborted"
    scopes = of_type(events, "session_finished")[0].scopes
    assert scopes["flags"] == scopes["code"] == "rolled_back"
    assert "rolled back: code, flags)" in result.message and "not rolled back" not in result.message
    assert [s.name for s in of_type(events, "signal")] == ["Root cause analysis initiated"]


async def test_a_notice_after_the_decision_goes_out_only_once_validation_is_approved(
        write_plan: Any, tmp_path: Path) -> None:
    sent = tmp_path / "sent"
    steps = simple_steps()
    steps[-1]["actions"].append({"id": "notify", "after_decision": True,
                                 **sh(f"open({str(sent)!r}, 'a').write('sent\\n')")})
    plan = write_plan(steps)
    reject = {("approval", "validate"): Decision("reject", "smoke test owner not reached", by="Terry")}
    result, events = await run_plan(plan, Scripted(approving(reject)), tmp_path,
                                    journal_path=tmp_path / "rejected.jsonl")
    assert not sent.exists()  # the validation was not approved: nothing was announced
    assert not [e for e in of_type(events, "action_started") if e.action == "notify"]
    result, events = await run_plan(plan, Scripted(approving()), tmp_path, journal_path=tmp_path / "ok.jsonl")
    assert result.exit_state == "completed" and sent.read_text() == "sent\n"
    kinds = [(e.type, getattr(e, "gate", ""), getattr(e, "action", "")) for e in events]
    approved = kinds.index(("approval_given", "validation", ""))
    notice = kinds.index(("action_started", "", "notify"))
    gate = max(i for i, e in enumerate(events) if e.type == "decision_made" and e.kind == "gate")
    assert gate < approved < notice < kinds.index(("step_finished", "", ""), notice)
    assert not [v for v in of_type(events, "verification") if v.action == "notify"]


async def test_missing_input_halts_or_takes_its_remediation(write_plan: Any, tmp_path: Path) -> None:
    inputs = {"artifacts": [
        {"id": "snapshot", "check": {"path": str(tmp_path / "nope")}, "remediation": "use_backup"},
        {"id": "rollback-scripts", "check": {"path": str(tmp_path / "nope2")}},
    ]}
    plan = write_plan(inputs=inputs)
    source = Scripted(approving({("input", "snapshot"): Decision("remediate", "using the 02:00 backup")}))
    result, events = await run_plan(plan, source, tmp_path)
    assert result.exit_state == "blocked"
    assert "rollback-scripts is missing" in result.message
    asked = [r for r in source.seen if r.kind == "input"]
    assert [r.subject for r in asked] == ["snapshot"] and asked[0].options == ["remediate", "halt"]
    assert not of_type(events, "plan_reviewed")  # halted before the review
    assert [s.name for s in of_type(events, "signal")] == []


async def test_plan_review_rejected_is_blocked_and_nothing_ran(write_plan: Any, tmp_path: Path) -> None:
    source = Scripted(approving({("plan_review", ""): Decision("reject", "wrong target version")}))
    result, events = await run_plan(write_plan(), source, tmp_path)
    assert result.exit_state == "blocked"
    assert of_type(events, "plan_reviewed")[0].approved is False
    assert not of_type(events, "action_started")


async def test_no_go_then_retry_then_reassess_back_to_step_one(write_plan: Any, tmp_path: Path) -> None:
    gates: dict[str, int] = {}

    def answer(request: DecisionRequested) -> Decision:
        if request.kind == "gate":
            gates[request.step] = gates.get(request.step, 0) + 1
            assert request.occurrence == gates[request.step]
            if request.step == "flags" and gates["flags"] == 1:
                return Decision("no_go", "EU flag still on")
            if request.step == "code" and gates["code"] == 1:
                return Decision("no_go", "wrong version deployed")
        if request.kind == "no_go":
            return Decision("retry") if request.step == "flags" else Decision("reassess", "learned: two services")
        return approving()(request)

    source = Scripted(answer)
    result, events = await run_plan(write_plan(), source, tmp_path)
    assert result.exit_state == "completed"
    second_assess = [r for r in source.seen if r.kind == "gate" and r.step == "assess"][1]
    assert "step code: learned: two services" in second_assess.evidence.detail
    started = [(e.step, e.attempt) for e in of_type(events, "step_started")]
    assert started == [("assess", 1), ("flags", 1), ("flags", 2), ("code", 1),
                       ("assess", 2), ("flags", 3), ("code", 2), ("validate", 1)]
    finished = [(e.step, e.status) for e in of_type(events, "step_finished")]
    assert finished == [("assess", "done"), ("flags", "done"), ("assess", "done"), ("flags", "done"),
                        ("code", "done"), ("configuration", "not_applicable"), ("database", "not_applicable"),
                        ("infrastructure", "not_applicable"), ("validate", "done")]


async def test_failed_action_retry_then_manual_completion(write_plan: Any, tmp_path: Path) -> None:
    marker = tmp_path / "second-try"
    flaky = sh(f"import pathlib,sys; p=pathlib.Path({str(marker)!r}); ok=p.exists(); p.touch(); sys.exit(0 if ok else 4)")
    broken = sh("import sys; print('cannot reach config store', file=sys.stderr); sys.exit(5)")
    steps = steps_with("code", actions=[{"id": "flaky", **flaky}, {"id": "broken", **broken}])
    failures: list[str] = []

    def answer(request: DecisionRequested) -> Decision:
        if request.kind == "action_failed":
            failures.append(request.action)
            assert "manual" in request.needs_reason
            return Decision("retry") if request.action == "flaky" else Decision("manual", "restored by hand from git")
        return approving()(request)

    result, events = await run_plan(write_plan(steps), Scripted(answer), tmp_path)
    assert result.exit_state == "completed"
    assert failures == ["flaky", "broken"]
    finished = [(e.action, e.attempt, e.status) for e in of_type(events, "action_finished") if e.step == "code"]
    assert finished == [("flaky", 1, "failed"), ("flaky", 2, "ok"), ("broken", 1, "failed")]
    assert of_type(events, "session_finished")[0].scopes["code"] == "manual"
    stderr = [line for e in of_type(events, "action_output") if e.stream == "stderr" for line in e.lines]
    assert "cannot reach config store" in stderr


async def test_automatic_retries_happen_before_the_operator_is_asked(write_plan: Any, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    action = sh(f"import pathlib,sys; p=pathlib.Path({str(counter)!r}); n=len(p.read_text()) if p.exists() else 0; "
                "p.write_text('x'*(n+1)); sys.exit(0 if n >= 2 else 1)")
    steps = steps_with("flags", actions=[{"id": "off", **action, "retry": {"attempts": 3, "delay": 0}}])
    source = Scripted(approving())
    result, events = await run_plan(write_plan(steps), source, tmp_path)
    assert result.exit_state == "completed"
    assert [e.status for e in of_type(events, "action_finished") if e.step == "flags"] == ["failed", "failed", "ok"]
    assert not [r for r in source.seen if r.kind == "action_failed"]


async def test_override_needs_a_reason_and_is_asked_again_without_one(write_plan: Any, tmp_path: Path) -> None:
    plan = write_plan(simple_steps(code_verify=[PY, "-c", "raise SystemExit(1)"]))
    answers = iter([Decision("override", ""), Decision("override", "version endpoint is cached for 60 s")])

    def answer(request: DecisionRequested) -> Decision:
        return next(answers) if request.kind == "gate" and request.step == "code" else approving()(request)

    source = Scripted(answer)
    result, events = await run_plan(plan, source, tmp_path)
    assert result.exit_state == "completed"
    code_gates = [r for r in source.seen if r.kind == "gate" and r.step == "code"]
    assert len(code_gates) == 2 and code_gates[1].occurrence == 2
    assert "needs a reason" in code_gates[1].evidence.detail
    made = [d for d in of_type(events, "decision_made") if d.step == "code"]
    assert [d.reason for d in made] == ["", "version endpoint is cached for 60 s"]


async def test_same_person_cannot_hold_two_roles_unless_the_plan_allows(write_plan: Any, tmp_path: Path) -> None:
    names = iter(["Dana", "Dana", "Terry"])

    def answer(request: DecisionRequested) -> Decision:
        if request.kind == "approval":
            return Decision("approve", by=next(names))
        return approving()(request)

    source = Scripted(answer)
    result, events = await run_plan(write_plan(), source, tmp_path)
    assert result.exit_state == "completed"
    assert [(a.role, a.name) for a in of_type(events, "approval_given")] == [("devops-lead", "Dana"),
                                                                            ("tech-lead", "Terry")]
    refused = [r for r in source.seen if r.kind == "approval"][2]
    assert "Dana already approved as devops-lead" in refused.evidence.detail

    allowed = write_plan(name="same.yaml", approvals={"allow_same_person": True})
    result, events = await run_plan(allowed, AutoDecisions("olivia"), tmp_path, journal_path=tmp_path / "b.jsonl")
    assert result.exit_state == "completed"
    assert {a.name for a in of_type(events, "approval_given")} == {"olivia"}


async def test_validation_rejected_offers_no_go_paths(write_plan: Any, tmp_path: Path) -> None:
    def answer(request: DecisionRequested) -> Decision:
        if request.kind == "approval" and request.subject == "tech-lead":
            return Decision("reject", "error rate still high", by="Terry")
        if request.kind == "no_go":
            assert "did not approve the validation" in request.question
            return Decision("halt", "waiting for the error rate")
        return approving()(request)

    result, events = await run_plan(write_plan(), Scripted(answer), tmp_path)
    assert result.exit_state == "blocked"
    assert [s.name for s in of_type(events, "signal")] == ["Root cause analysis initiated"]  # step 7 was reached


async def test_manual_procedure_needs_a_note(write_plan: Any, tmp_path: Path) -> None:
    steps = steps_with("code", actions=[{"id": "by-hand", **sh("pass"), "manual": True,
                                         "description": "restart the legacy box"}])
    result, events = await run_plan(write_plan(steps), Scripted(approving()), tmp_path)
    assert result.exit_state == "completed"
    finished = [e for e in of_type(events, "action_finished") if e.action == "by-hand"][0]
    assert finished.status == "manual" and finished.details["note"] == "done by hand"
    auto, _ = await run_plan(write_plan(steps, name="b.yaml"), AutoDecisions("olivia"), tmp_path,
                             journal_path=tmp_path / "b.jsonl")
    assert auto.exit_state == "blocked"  # auto cannot do manual work


async def test_output_is_batched_not_one_event_per_line(write_plan: Any, tmp_path: Path) -> None:
    steps = steps_with("assess", actions=[{"id": "flood", **sh("for i in range(5000): print('line', i)")}])
    result, events = await run_plan(write_plan(steps), AutoDecisions("olivia"), tmp_path)
    batches = [e for e in of_type(events, "action_output") if e.action == "flood"]
    lines = [line for e in batches for line in e.lines]
    assert lines == [f"line {i}" for i in range(5000)]
    assert len(batches) <= 5000 // 100 and all(len(e.lines) <= 500 for e in batches)
    finished = [e for e in events if e.type == "action_finished" and e.action == "flood"][0]
    assert batches[-1].seq < finished.seq  # flushed before the action's end


async def test_window_warnings_at_50_80_100_percent(write_plan: Any, tmp_path: Path) -> None:
    steps = steps_with("assess", actions=[{"id": "slow", "kind": "shell", "argv": ["sleep", "0.6"]}])
    plan = write_plan(steps, inputs={"constraints": {"window": 0.4}})
    result, events = await run_plan(plan, AutoDecisions("olivia"), tmp_path)
    warnings = of_type(events, "window_warning")
    assert [w.percent for w in warnings] == [50, 80, 100]
    assert all(w.elapsed >= w.window * w.percent / 100 for w in warnings)


async def test_secrets_never_reach_the_journal(write_plan: Any, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("DEPLOY_TOKEN", "s3cr3t-t0ken-value")
    action = {"id": "use", "kind": "shell", "argv": [PY, "-c", "import sys; print('token', sys.argv[1])",
                                                     "${secrets.token}"]}
    plan = write_plan(steps_with("flags", actions=[action]), secrets={"token": {"env": "DEPLOY_TOKEN"}})
    result, events = await run_plan(plan, AutoDecisions("olivia"), tmp_path)
    assert result.exit_state == "completed"
    text = (tmp_path / "session.journal.jsonl").read_text()
    assert "s3cr3t-t0ken-value" not in text
    assert "token •••" in text  # the output line is there, masked


async def test_health_probes_feed_evidence_and_step_checks(write_plan: Any, tmp_path: Path) -> None:
    flag = tmp_path / "healthy"
    flag.touch()
    probe = {"id": "api", "kind": "command", "argv": ["test", "-e", str(flag)], "interval": 0.1, "trigger": True}
    steps = simple_steps()
    steps[3]["verify"] = [{"kind": "probe", "probe": "api"},
                          {"kind": "command", "argv": ["true"], "category": "functionality"}]
    plan = write_plan(steps, health=[probe])
    source = Scripted(approving())
    session_events: list[Any] = []
    result, events = await run_plan(plan, source, tmp_path, sample_every=0.2, listeners=[session_events.append])
    assert result.exit_state == "completed"
    checks = [v for v in of_type(events, "verification") if v.step == "validate"]
    assert {(v.action, v.category, v.ok) for v in checks} == {("", "health", True), ("", "functionality", True)}
    gate = [r for r in source.seen if r.kind == "gate" and r.step == "validate"][0]
    assert {c["category"] for c in gate.evidence.verifications} == {"health", "functionality"}
    assert "api" in gate.evidence.health
    assert of_type(events, "session_started")[0].outline["probes"][0]["trigger"] is True
    # the monitor stops before the session's end: nothing follows session_finished
    assert events[-1].type == "session_finished"
    assert session_events[-1].type == "session_finished"


async def test_output_from_an_adapters_worker_thread_reaches_the_journal_in_order(tmp_path: Path) -> None:
    import asyncio
    import threading

    from rollback_tui.engine.output import OutputBatcher

    recorded: list[Any] = []
    batcher = OutputBatcher(lambda events: recorded.extend(events) or list(events), "database", "migrate")
    loop_thread = threading.get_ident()

    def work() -> None:  # what the database adapter does: log from the thread that runs the SQL
        assert threading.get_ident() != loop_thread
        for index in range(3):
            batcher.add("", "info", [f"statement {index}"])

    await asyncio.to_thread(work)
    batcher.close()
    assert [line for event in recorded for line in event.lines] == ["statement 0", "statement 1", "statement 2"]


async def test_gate_evidence_shows_health_sampled_at_the_decision(write_plan: Any, tmp_path: Path) -> None:
    """A probe polled once an hour still shows its state at the moment of the go/no-go, not an hour-old one."""
    healthy = tmp_path / "healthy"
    probe = {"id": "api", "kind": "command", "argv": ["test", "-e", str(healthy)], "interval": 3600,
             "degraded_after": 1, "down_after": 1}
    steps = simple_steps()
    steps[1]["actions"] = [{"id": "fix", **sh(f"open({str(healthy)!r}, 'w').close()")}]  # the flags step fixes it
    plan = write_plan(steps, health=[probe])
    source = Scripted(approving())
    result, events = await run_plan(plan, source, tmp_path, sample_every=60)
    assert result.exit_state == "completed"
    flags_gate = [r for r in source.seen if r.kind == "gate" and r.step == "flags"][0]
    assert flags_gate.evidence.health["api"]["state"] == "healthy"
    changes = [(e.old, e.new) for e in of_type(events, "health_changed")]
    assert ("unknown", "down") in changes and ("down", "healthy") in changes
