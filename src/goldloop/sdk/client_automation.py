"""Client methods for automation rules, alert rules, channels and deliveries.

Mixed into ``goldloop.client.Client``; each method is one HTTP call to ``/api/v1`` and returns
the JSON the server answers (see docs/rules.md and docs/alerts.md).
"""

from __future__ import annotations

from typing import Any, cast

from goldloop.sdk.client_base import ClientPlumbing, Doc
from goldloop.sdk.client_base import segment as _p


class AutomationMixin(ClientPlumbing):
    """Rules (``/rules``), alert rules (``/alert-rules``), ``/channels`` and ``/deliveries``."""

    # --- automation rules ----------------------------------------------------------------

    def create_rule(
        self,
        project_id: str,
        name: str,
        actions: list[Doc],
        *,
        trigger: str = "run",
        filter: str | None = None,
        sample_rate: float = 1.0,
        root_only: bool = True,
        feedback_match: Doc | None = None,
        daily_judge_budget: int | None = None,
        enabled: bool = True,
    ) -> Doc:
        """A rule on the project's completed runs (or new feedback): see docs/rules.md."""
        body = {
            "project_id": project_id,
            "name": name,
            "actions": actions,
            "trigger": trigger,
            "filter": filter,
            "sample_rate": sample_rate,
            "root_only": root_only,
            "feedback_match": feedback_match,
            "daily_judge_budget": daily_judge_budget,
            "enabled": enabled,
        }
        return self._obj("POST", "/rules", json=body)

    def get_rule(self, rule_id: str) -> Doc:
        """The rule with its status, watermark, lag and outcome counts."""
        return self._obj("GET", f"/rules/{_p(rule_id)}")

    def list_rules(self, project_id: str | None = None) -> list[Doc]:
        return cast(list[Doc], self._json("GET", "/rules", params={"project_id": project_id}))

    def judge_alignment(
        self,
        judge_key: str,
        *,
        human_key: str | None = None,
        rule_id: str | None = None,
        evaluator: str | None = None,
        project_id: str | None = None,
        since: str | None = None,
        until: str | None = None,
        threshold: float = 0.5,
        confidence: float = 0.95,
        include_api: bool = False,
    ) -> Doc:
        """How far a judge's scores agree with people's on the runs both scored: TPR, TNR,
        kappa (pass/fail) or correlations (continuous) with intervals, per judge identity, the
        disagreements, and the judge's pass rate corrected for its errors (docs/feedback.md)."""
        params = {
            "judge_key": judge_key,
            "human_key": human_key,
            "rule_id": rule_id,
            "evaluator": evaluator,
            "project_id": project_id,
            "since": since,
            "until": until,
            "threshold": threshold,
            "confidence": confidence,
            "include_api": "true" if include_api else "false",
        }
        return self._obj("GET", "/judge-alignment", params=params)

    # --- judge drift canaries ----------------------------------------------------------------

    def create_canaries(
        self,
        rule_id: str,
        *,
        size: int = 100,
        selection: str = "balanced",
        interval_s: int | None = None,
        replace: bool = False,
        **options: Any,
    ) -> Doc:
        """Freeze the runs people labelled on the rule's judge key as its canary set (admin
        key): the server re-scores it with the rule's judge on a schedule and whenever the
        judge's model or prompt changes (docs/judge-alignment.md). ``options``: judge_key,
        human_key, include_api, alpha, min_drop, threshold, seed."""
        body = {
            "size": size,
            "selection": selection,
            "interval_s": interval_s,
            "replace": replace,
            **options,
        }
        return self._obj("POST", f"/rules/{_p(rule_id)}/canaries", json=body)

    def list_canary_sets(
        self, *, rule_id: str | None = None, project_id: str | None = None
    ) -> list[Doc]:
        """The workspace's canary sets, each with its latest run's figures and drift."""
        params = {"rule_id": rule_id, "project_id": project_id}
        return cast(list[Doc], self._json("GET", "/canary-sets", params=params))

    def canary_runs(self, set_id: str, *, limit: int = 50) -> list[Doc]:
        """A canary set's runs, newest first: trigger, judge model and prompt hash, figures
        (TPR, TNR, kappa or correlations with intervals and n) and drift against the baseline."""
        path = f"/canary-sets/{_p(set_id)}/runs"
        return cast(list[Doc], self._json("GET", path, params={"limit": limit}))

    def run_canaries(self, set_id: str) -> Doc:
        """Queue a re-scoring of the set now (admin key)."""
        return self._obj("POST", f"/canary-sets/{_p(set_id)}/run")

    def accept_canary_baseline(self, set_id: str, run_id: str | None = None) -> Doc:
        """Make a completed run (default: the latest) the baseline drift is measured against."""
        return self._obj("POST", f"/canary-sets/{_p(set_id)}/accept", json={"run_id": run_id})

    def update_rule(self, rule_id: str, **changes: Any) -> Doc:
        return self._obj("PATCH", f"/rules/{_p(rule_id)}", json=changes)

    def set_rule_enabled(self, rule_id: str, enabled: bool) -> Doc:
        """Pause (False) or resume (True) a rule; it keeps its place in the run log."""
        return self._obj("PATCH", f"/rules/{_p(rule_id)}", json={"enabled": enabled})

    def delete_rule(self, rule_id: str) -> None:
        self._request("DELETE", f"/rules/{_p(rule_id)}")

    def rule_history(
        self,
        rule_id: str,
        *,
        status: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> list[Doc]:
        """Actions newest first; pass the last ``id`` as ``before`` for the next page."""
        params = {"status": status, "limit": limit, "before": before}
        path = f"/rules/{_p(rule_id)}/history"
        return cast(list[Doc], self._json("GET", path, params=params))

    def backfill_rule(self, rule_id: str, start: str, end: str) -> Doc:
        """Apply the rule to runs started in [start, end) (ISO-8601), without duplicates."""
        body = {"start": start, "end": end}
        return self._obj("POST", f"/rules/{_p(rule_id)}/backfill", json=body)

    # --- alerts --------------------------------------------------------------------------

    def create_channel(self, name: str, kind: str, url: str, *, secret: str | None = None) -> Doc:
        """A notification channel: ``webhook``, ``slack`` or ``pagerduty`` (routing key in
        ``secret``)."""
        body = {"name": name, "kind": kind, "url": url, "secret": secret}
        return self._obj("POST", "/channels", json=body)

    def list_channels(self) -> list[Doc]:
        return cast(list[Doc], self._json("GET", "/channels"))

    def delete_channel(self, channel_id: str) -> None:
        self._request("DELETE", f"/channels/{_p(channel_id)}")

    def create_alert_rule(
        self,
        project_id: str,
        name: str,
        metric: Doc,
        condition: Doc,
        *,
        window_s: int = 3600,
        every_s: int = 60,
        cooldown_s: int = 900,
        channel_ids: list[str] | None = None,
        enabled: bool = True,
    ) -> Doc:
        """An alert on a project metric: a threshold or a significant change (docs/alerts.md)."""
        body = {
            "project_id": project_id,
            "name": name,
            "metric": metric,
            "condition": condition,
            "window_s": window_s,
            "every_s": every_s,
            "cooldown_s": cooldown_s,
            "channel_ids": channel_ids or [],
            "enabled": enabled,
        }
        return self._obj("POST", "/alert-rules", json=body)

    def get_alert_rule(self, alert_rule_id: str) -> Doc:
        return self._obj("GET", f"/alert-rules/{_p(alert_rule_id)}")

    def list_alert_rules(self, project_id: str | None = None) -> list[Doc]:
        params = {"project_id": project_id}
        return cast(list[Doc], self._json("GET", "/alert-rules", params=params))

    def update_alert_rule(self, alert_rule_id: str, **changes: Any) -> Doc:
        return self._obj("PATCH", f"/alert-rules/{_p(alert_rule_id)}", json=changes)

    def delete_alert_rule(self, alert_rule_id: str) -> None:
        self._request("DELETE", f"/alert-rules/{_p(alert_rule_id)}")

    def acknowledge_alert(self, alert_rule_id: str, by: str) -> Doc:
        return self._obj("POST", f"/alert-rules/{_p(alert_rule_id)}/ack", json={"by": by})

    def alert_events(self, alert_rule_id: str, *, limit: int = 100) -> list[Doc]:
        path = f"/alert-rules/{_p(alert_rule_id)}/events"
        return cast(list[Doc], self._json("GET", path, params={"limit": limit}))

    def list_deliveries(self, *, status: str | None = None, limit: int = 100) -> list[Doc]:
        """Outgoing notifications with every attempt (status code, error, duration)."""
        params = {"status": status, "limit": limit}
        return cast(list[Doc], self._json("GET", "/deliveries", params=params))
