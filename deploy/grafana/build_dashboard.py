"""Generate Tandem's Grafana dashboard from code (grafana-foundation-sdk) and write the committed JSON.

    python -m deploy.grafana.build_dashboard            # rewrite deploy/grafana/dashboards/tandem.json
    python -m deploy.grafana.build_dashboard --check    # exit 1 if the committed JSON is out of date

The panels are plain data (`ROWS`) so the test and `benchmarks.render_panels` read the same
queries Grafana runs. Every metric a query names must be declared in common/metrics.py (tested).
Grafana's `$__rate_interval` and the `$robot` / `$actor_id` variables are the only placeholders.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import stat, timeseries
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models.dashboard import DataSourceRef, VariableRefresh

OUTPUT = Path(__file__).parent / "dashboards" / "tandem.json"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="tandem-prometheus")  # provisioning/datasources uses this uid
UID = "tandem-overview"
ACTOR = 'actor_id=~"$actor_id", robot=~"$robot"'  # the label filter of every per-actor query
RATE = "[$__rate_interval]"


@dataclass(frozen=True)
class PanelSpec:
    """One panel: a title, its unit (Grafana unit id), and (PromQL, legend) pairs."""

    title: str
    unit: str
    queries: tuple[tuple[str, str], ...]
    kind: str = "timeseries"  # or "stat"
    description: str = ""


def _quantiles(metric: str, by: str, selector: str = ACTOR) -> tuple[tuple[str, str], ...]:
    """p50 and p99 of a histogram, one series per `by` label value."""
    series = f"{metric}_bucket{{{selector}}}" if selector else f"{metric}_bucket"
    return tuple(
        (f"histogram_quantile({q}, sum by (le, {by}) (rate({series}{RATE})))", f"p{int(q * 100)} {{{{{by}}}}}")
        for q in (0.5, 0.99)
    )


def _train(names: str) -> tuple[tuple[str, str], ...]:
    return ((f'tandem_learner_train_metric{{name=~"{names}"}}', "{{name}}"),)


ROWS: dict[str, list[PanelSpec]] = {
    "Fleet": [
        PanelSpec("Actors connected", "none", (("tandem_learner_actors_connected", "actors"),), kind="stat"),
        PanelSpec("Learner policy version", "none", (("tandem_learner_policy_version", "version"),), kind="stat"),
        PanelSpec("Transitions/s per actor (received by the learner)", "ops", (
            (f"sum by (actor_id, robot) (rate(tandem_learner_transitions_received_total{{{ACTOR}}}{RATE}))",
             "{{actor_id}} ({{robot}})"),
        )),  # fmt: skip
        PanelSpec("Bytes/s", "Bps", (
            (f"sum by (actor_id) (rate(tandem_actor_bytes_sent_total{{{ACTOR}}}{RATE}))", "sent by {{actor_id}}"),
            (f"sum by (actor_id) (rate(tandem_learner_bytes_received_total{{{ACTOR}}}{RATE}))",
             "received from {{actor_id}}"),
        )),  # fmt: skip
        PanelSpec("Send queue, unacked and spool depth", "none", (
            (f"tandem_actor_send_queue_depth{{{ACTOR}}}", "queue {{actor_id}}"),
            (f"tandem_actor_unacked_transitions{{{ACTOR}}}", "unacked {{actor_id}}"),
            (f"tandem_actor_spool_transitions{{{ACTOR}}}", "spool {{actor_id}}"),
        )),  # fmt: skip
        PanelSpec("Disk spool size", "bytes", ((f"tandem_actor_spool_bytes{{{ACTOR}}}", "{{actor_id}}"),)),
        PanelSpec("Policy-version staleness", "none", (
            (f"scalar(max(tandem_learner_policy_version)) - tandem_actor_policy_version{{{ACTOR}}}",
             "behind now {{actor_id}}"),
            *_quantiles("tandem_learner_transition_staleness_versions", "actor_id"),
        ), description="Versions between the newest published policy and the one that acted."),  # fmt: skip
    ],
    "Learner": [
        PanelSpec("Training stage", "none", (
            ("tandem_learner_stage", "stage number"),
            ("tandem_learner_stage_info == 1", "{{kind}} {{stage}}"),
            ("tandem_learner_stage_done", "updates or episodes done in it"),
        ), kind="stat", description="The algorithm's stages run in order: offline, rollouts, online."),  # fmt: skip
        PanelSpec("Updates/s", "ops", ((f"rate(tandem_learner_updates_total{RATE})", "updates/s"),)),
        PanelSpec("Update seconds p50/p99", "s", _quantiles("tandem_learner_update_seconds", "instance", "")),
        PanelSpec("Replay size", "none", (("tandem_learner_replay_size", "{{buffer}}"),)),
        PanelSpec("Durable replay on disk", "bytes", (("tandem_learner_replay_disk_bytes", "segments"),)),
        PanelSpec("Checkpoint seconds p50/p99", "s", _quantiles("tandem_learner_checkpoint_seconds", "instance", "")),
        PanelSpec("Losses", "none", _train(".*_loss")),
        PanelSpec("Q statistics", "none", _train("q_mean|q_std|target_q_mean|q_oscillation")),
        PanelSpec("Entropy and temperature", "none", _train("entropy|h_sig|alpha|policy_std")),
        PanelSpec("Gate-open fraction (SigEnt-SAC) and OOD action ratio", "percentunit",
                  _train("gate_open_fraction|ood_action_ratio")),
    ],
    "Robots": [
        PanelSpec("Control period p50/p99", "s", _quantiles("tandem_actor_control_period_seconds", "actor_id")),
        PanelSpec("Control overruns/s", "ops", (
            (f"sum by (actor_id) (rate(tandem_actor_control_overruns_total{{{ACTOR}}}{RATE}))", "{{actor_id}}"),
        )),  # fmt: skip
        PanelSpec("Policy inference p50/p99", "s", _quantiles("tandem_actor_policy_inference_seconds", "actor_id")),
        PanelSpec("Policy inference p99 by step kind (forward, chunk re-plan, queued)", "s", (
            (f"histogram_quantile(0.99, sum by (le, step) (rate(tandem_actor_policy_inference_seconds_bucket"
             f"{{{ACTOR}}}{RATE})))", "p99 {{step}}"),
        )),  # fmt: skip
        PanelSpec("Actions by proposal (gated: first = BC, second = RL)", "percentunit", (
            (f"sum by (robot, proposal) (rate(tandem_actor_proposal_actions_total{{{ACTOR}}}{RATE}))"
             f" / ignoring(proposal) group_left sum by (robot) (rate(tandem_actor_proposal_actions_total"
             f"{{{ACTOR}}}{RATE}))", "{{robot}} {{proposal}}"),
        ), description="Fraction of executed actions by who proposed them (Q2RL's Fig. 5 on a gated program)."),
        PanelSpec("Safety and watchdog stops", "none", (
            (f"sum by (actor_id, reason) (increase(tandem_actor_safety_stops_total{{{ACTOR}}}{RATE}))",
             "{{actor_id}} {{reason}}"),
        )),  # fmt: skip
        PanelSpec("Operator interventions (steps/s)", "ops", (
            (f"sum by (actor_id) (rate(tandem_actor_intervention_steps_total{{{ACTOR}}}{RATE}))", "{{actor_id}}"),
        )),  # fmt: skip
        PanelSpec("Episode success rate per robot (last 20 episodes)", "percentunit", (
            (f"avg by (robot, mode) (tandem_learner_episode_success_rate{{{ACTOR}}})", "{{robot}} {{mode}}"),
        )),  # fmt: skip
        PanelSpec("Episode return", "none", ((f"tandem_actor_episode_return{{{ACTOR}}}", "{{actor_id}} {{mode}}"),)),
        PanelSpec("Episode length", "none",
                  ((f"tandem_actor_episode_length_steps{{{ACTOR}}}", "{{actor_id}} {{mode}}"),)),
    ],
    "Safety and security": [
        PanelSpec("Rejected messages by reason", "none", (
            (f"sum by (reason) (increase(tandem_learner_rejected_messages_total{RATE}))", "{{reason}}"),
        )),  # fmt: skip
        PanelSpec("Reconnects and resent batches", "none", (
            (f"sum by (actor_id) (increase(tandem_actor_reconnects_total{{{ACTOR}}}{RATE}))",
             "reconnects {{actor_id}}"),
            (f"sum by (actor_id) (increase(tandem_actor_batches_resent_total{{{ACTOR}}}{RATE}))",
             "resent {{actor_id}}"),
        )),  # fmt: skip
        PanelSpec("Learner link up", "none", ((f"tandem_actor_learner_connected{{{ACTOR}}}", "{{actor_id}}"),)),
        PanelSpec("Transitions dropped (send queue full)", "none", (
            (f"sum by (actor_id) (increase(tandem_actor_transitions_dropped_total{{{ACTOR}}}{RATE}))", "{{actor_id}}"),
        )),  # fmt: skip
    ],
}


def _panel(spec: PanelSpec, panel_id: int):
    if spec.kind == "stat":
        panel = stat.Panel().reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
        panel = panel.span(6).height(4)
    else:
        legend = common_builders.VizLegendOptions().show_legend(True).display_mode(common_models.LegendDisplayMode.LIST)
        legend = legend.placement(common_models.LegendPlacement.BOTTOM)
        panel = timeseries.Panel().legend(legend).tooltip(common_builders.VizTooltipOptions()).line_width(1)
        panel = panel.fill_opacity(10).show_points(common_models.VisibilityMode.NEVER).span(8).height(8)
    panel = panel.id(panel_id).title(spec.title).unit(spec.unit).datasource(DATASOURCE)
    if spec.description:
        panel = panel.description(spec.description)
    for index, (expr, legend_text) in enumerate(spec.queries):
        panel = panel.with_target(Dataquery().expr(expr).legend_format(legend_text).ref_id(chr(ord("A") + index)))
    return panel


def _variable(name: str, query: str):
    return (
        dash.QueryVariable(name).label(name).datasource(DATASOURCE).query(query).multi(True)
        .include_all(True).all_value(".*").refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
    )  # fmt: skip


def build():
    """The dashboard model (grafana_foundation_sdk.models.dashboard.Dashboard)."""
    builder = (
        dash.Dashboard("Tandem: fleet, learner, robots").uid(UID).tags(["tandem"]).refresh("10s")
        .time("now-30m", "now").timezone("browser")
        .with_variable(_variable("robot", "label_values(tandem_actor_policy_version, robot)"))
        .with_variable(_variable("actor_id", 'label_values(tandem_actor_policy_version{robot=~"$robot"}, actor_id)'))
    )  # fmt: skip
    panel_id = 1
    for title, specs in ROWS.items():
        builder = builder.with_row(dash.Row(title).id(panel_id))
        panel_id += 1
        for spec in specs:
            builder = builder.with_panel(_panel(spec, panel_id))
            panel_id += 1
    return builder.build()


def to_json(model) -> str:
    return JSONEncoder(sort_keys=True, indent=2).encode(model) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed JSON differs from the code")
    args = parser.parse_args(argv)
    text = to_json(build())
    if args.check:
        if OUTPUT.read_text() != text:
            print(f"{OUTPUT} is out of date: run python -m deploy.grafana.build_dashboard", file=sys.stderr)
            return 1
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
