"""Judge drift in alerts: the ``judge_drift`` alert, and what agent-quality alerts say about it.

- A ``judge_drift`` alert rule (metric ``{"kind": "judge_drift", "rule_id": ...}``, condition
  ``{"type": "drift"}``) fires when the latest completed canary run of the rule (or of any rule
  of its project, without ``rule_id``) shows a significant drop of the judge's agreement with
  people against the set's baseline, and resolves at the first evaluation where none does (a
  clean canary run, or the drifted run accepted as the new baseline). It notifies its own
  channels through the same outbox as every alert.
- An agent-quality alert on a feedback key (``feedback_pass_rate``, ``feedback_mean``,
  ``category_share``) whose scores come from a judge rule with canaries: while that judge's
  latest canary run shows drift and an enabled judge_drift alert watches it, the alert does not
  page (the scores it would page on come from a judge that no longer agrees with people; the
  judge_drift alert is the page) and says so in its last evaluation; when it fires and the
  judge drifted within the alert's period (its window and baseline windows), the notification
  and the incident's event say so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.engine import Connection

from goldloop.domain import alerts as domain
from goldloop.domain import canaries as canary_domain
from goldloop.domain.alert_detector import DetectorState
from goldloop.domain.alerts import Condition, Evaluation, MetricSpec
from goldloop.domain.clock import to_iso
from goldloop.domain.errors import InvalidInput
from goldloop.services.context import ServiceContext
from goldloop.store import alerts as alert_store
from goldloop.store import canaries as store
from goldloop.store import rules as rule_store

Row = dict[str, Any]
JUDGED_METRICS = ("feedback_pass_rate", "feedback_mean", "category_share")
WORST_SHOWN = 5


@dataclass(frozen=True, slots=True)
class JudgeState:
    """One canary set's judge, now: its latest completed run against its baseline."""

    set_id: str
    rule_id: str
    rule_name: str
    judge_key: str
    latest_run_id: str | None
    latest_at: int | None
    drift: canary_domain.Drift | None  # None: no comparison yet (no run, or only the baseline)
    worse_run_ids: tuple[str, ...]
    last_drift_at: int | None  # when a canary run last found drift (accepted or not since)

    @property
    def drifted(self) -> bool:
        return self.drift is not None and self.drift.drifted


def check_metric(conn: Connection, workspace_id: str, project_id: str, spec: MetricSpec) -> None:
    """A judge_drift alert's rule must be a rule of the alert's project (400 otherwise)."""
    if spec.kind != "judge_drift" or spec.rule_id is None:
        return
    rule = rule_store.get_rule(conn, workspace_id, spec.rule_id)
    if rule is None or rule["project_id"] != project_id:
        raise InvalidInput(
            f"no rule with id {spec.rule_id!r} in this alert's project",
            details={"field": "metric.rule_id"},
        )


def judge_states(
    conn: Connection,
    workspace_id: str,
    project_id: str,
    *,
    rule_id: str | None = None,
    judge_key: str | None = None,
) -> list[JudgeState]:
    out = []
    sets = store.list_sets(
        conn, workspace_id, rule_id=rule_id, project_id=project_id, judge_key=judge_key
    )
    for cset in sets:
        latest = store.latest_done(conn, cset["id"])
        history = store.list_runs(conn, cset["id"], limit=50)
        drifted_at = [
            r["finished_at"]
            for r in history
            if isinstance(r.get("drift"), dict) and r["drift"].get("drifted")
        ]
        drift = None
        worse: tuple[str, ...] = ()
        base_id = cset["baseline_run_id"]
        if latest is not None and base_id and latest["id"] != base_id:
            base = store.get_run(conn, base_id)
            labels = {i["run_id"]: float(i["human_score"]) for i in store.items(conn, cset["id"])}
            if base is not None and base.get("verdicts") and latest.get("verdicts"):
                kind: canary_domain.Kind = "binary" if cset["kind"] == "binary" else "continuous"
                drift = canary_domain.compare(
                    kind,
                    base["verdicts"],
                    latest["verdicts"],
                    labels,
                    threshold=cset["threshold"],
                    alpha=cset["alpha"],
                    min_drop=cset["min_drop"],
                )
                worse = tuple(
                    r
                    for r in labels
                    if r in base["verdicts"]
                    and r in latest["verdicts"]
                    and canary_domain.loss(
                        kind, latest["verdicts"][r], labels[r], cset["threshold"]
                    )
                    > canary_domain.loss(kind, base["verdicts"][r], labels[r], cset["threshold"])
                )[:WORST_SHOWN]
        out.append(
            JudgeState(
                set_id=cset["id"],
                rule_id=cset["rule_id"],
                rule_name=cset["rule_name"],
                judge_key=cset["judge_key"],
                latest_run_id=None if latest is None else latest["id"],
                latest_at=None if latest is None else latest["finished_at"],
                drift=drift,
                worse_run_ids=worse,
                last_drift_at=max(drifted_at) if drifted_at else None,
            )
        )
    return out


def _watched_rules(conn: Connection, workspace_id: str, project_id: str) -> set[str | None]:
    """The judge rules an enabled judge_drift alert of the project watches (None: all)."""
    return {
        (r["metric"] or {}).get("rule_id")
        for r in alert_store.list_rules(conn, workspace_id, project_id)
        if r["enabled"] and (r["metric"] or {}).get("kind") == "judge_drift"
    }


def _hhmm(us: int | None) -> str:
    text = to_iso(us) or ""
    return f"{text[:10]} {text[11:16]} UTC" if text else "an unknown time"


def step_drift(ctx: ServiceContext, rule: Row, spec: MetricSpec, now: int) -> domain.Step:
    """One evaluation of a judge_drift alert rule."""
    states = ctx.db.read(
        lambda c: judge_states(c, rule["workspace_id"], rule["project_id"], rule_id=spec.rule_id)
    )
    compared = [s for s in states if s.drift is not None]
    detector = DetectorState.from_json(rule.get("detector_state"))
    timing = {
        "now_us": now,
        "last_resolved_us": rule["last_resolved_at"],
        "cooldown_s": rule["cooldown_s"],
    }
    if not compared:
        ran = [s for s in states if s.latest_run_id is not None]
        reason = (
            "no canary set on this rule"
            if not states
            else ("only the baseline canary run so far" if ran else "no completed canary run yet")
        )
        # A baseline with nothing to compare yet: no drift, decided (so an accepted run resolves)
        ev = Evaluation(False, bool(ran), None, 0, reason=reason)
        return domain.step_verdict(rule["state"], ev, detector, **timing)
    drifted = [s for s in compared if s.drifted]
    shown = max(drifted or compared, key=lambda s: s.drift.drop if s.drift else 0.0)
    d = shown.drift
    assert d is not None
    reason = (
        f"judge drift on rule {shown.rule_name!r} (key {shown.judge_key}), canary run at "
        f"{_hhmm(shown.latest_at)}: {d.reason}"
    )
    if not drifted:
        reason = f"no judge drift: {reason}"
    elif len(drifted) > 1:
        reason += f" (and {len(drifted) - 1} more rule(s))"
    ev = Evaluation(
        firing=bool(drifted),
        decided=True,
        value=None if d.latest_loss is None else 1 - d.latest_loss,
        n=d.n,
        baseline=None if d.baseline_loss is None else 1 - d.baseline_loss,
        baseline_n=d.n,
        p_value=d.p_value,
        reason=reason,
        worst_run_ids=shown.worse_run_ids if drifted else (),
    )
    return domain.step_verdict(rule["state"], ev, detector, **timing)


def annotate(
    ctx: ServiceContext,
    rule: Row,
    spec: MetricSpec,
    cond: Condition,
    outcome: domain.Step,
    now: int,
) -> domain.Step:
    """An agent-quality alert about to fire on a judge's scores: hold it while that judge is
    drifted, say so when it drifted within the alert's period."""
    if outcome.transition.event != "fired" or spec.kind not in JUDGED_METRICS or not spec.key:
        return outcome
    key = spec.key
    states = ctx.db.read(
        lambda c: judge_states(c, rule["workspace_id"], rule["project_id"], judge_key=key)
    )
    period_us = rule["window_s"] * (1 + cond.baseline_windows) * 1_000_000
    ev = outcome.evaluation
    now_drifted = [s for s in states if s.drifted]
    watched = ctx.db.read(lambda c: _watched_rules(c, rule["workspace_id"], rule["project_id"]))
    held_by = [s for s in now_drifted if s.rule_id in watched or None in watched]
    if held_by:
        s = held_by[0]
        note = (
            f"not paged: judge drift detected on the canaries of rule {s.rule_name!r} at "
            f"{_hhmm(s.latest_at)}: the drop may be the judge, not the agent (the judge-drift "
            "alert reports it; accept the judge's new behaviour or fix it, and this alert "
            "evaluates normally again)"
        )
        held = replace(ev, firing=False, reason=f"{ev.reason}; {note}")
        kept = DetectorState.from_json(rule.get("detector_state"))
        return domain.Step(domain.Transition("ok", None), held, kept)
    recent = [
        s for s in states if s.last_drift_at is not None and s.last_drift_at >= now - period_us
    ]
    if now_drifted:  # drifted, but no judge_drift alert would page anyone: this one does
        s = now_drifted[0]
        note = (
            f"judge drift detected on the canaries of rule {s.rule_name!r} at "
            f"{_hhmm(s.latest_at)}: the drop may be the judge, not the agent (no judge_drift "
            "alert watches this judge, so this alert pages)"
        )
    elif recent:
        s = max(recent, key=lambda x: x.last_drift_at or 0)
        note = (
            f"judge drift detected on the canaries of rule {s.rule_name!r} at "
            f"{_hhmm(s.last_drift_at)}: the drop may be the judge, not the agent"
        )
    else:
        judged = [s for s in states if s.latest_run_id is not None]
        if not judged:
            return outcome
        note = "no judge drift on the canaries of the judge behind this score"
    return replace(outcome, evaluation=replace(ev, reason=f"{ev.reason}; {note}"))
