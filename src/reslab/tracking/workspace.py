"""One saved W&B workspace per study (wandb-workspaces): train and test error against the step, one curve per
family (the run's job type) with its range over seeds; the final test error against depth; the gradient norm of
every layer. `unlogged` checks, before anything is saved, that every panel charts a key the runs log."""

from __future__ import annotations

import re

from reslab.tracking import wandb_keys as K

DEPTH = "model.depth"  # the Hydra key of the net's depth, as the run's config carries it
FAMILY = "JobType"  # W&B's run attribute that holds job_type (the model family or variant)
# Run attributes W&B itself fills in (Step, JobType, Group, ...): nothing for a run to log.
_RUN_ATTRIBUTES = {"Step", "JobType", "Group", "Name", "ID", "State", "CreatedTimestamp", "Runtime"}


def _flat_config_scatter():
    """wandb-workspaces addresses a config key `a.b` as the nested dict a -> b (`config:a.value.b`); a config
    logged flat, with the dotted key itself (`model.depth`), lives at `config:a.b.value`."""
    import wandb_workspaces.reports.v2 as wr

    class FlatConfigScatter(wr.ScatterPlot):
        def _to_model(self):
            model = super()._to_model()
            for axis in ("x", "y", "z"):
                metric = getattr(self, axis)
                if isinstance(metric, wr.Config):
                    setattr(model.config, f"{axis}_axis", f"config:{metric.name}.value")
            return model

    return FlatConfigScatter


def build(group: str, entity: str, project: str, flat_config: bool = True):
    """The workspace of one study's runs (W&B group `<study>/<profile>`), not saved."""
    import wandb_workspaces.reports.v2 as wr
    import wandb_workspaces.workspaces as ws
    from wandb_workspaces import expr

    def by_family(title: str, key: str):
        return wr.LinePlot(
            title=title, x=K.STEP, y=[key], groupby=FAMILY, groupby_aggfunc="mean", groupby_rangefunc="minmax"
        )

    scatter = _flat_config_scatter() if flat_config else wr.ScatterPlot
    return ws.Workspace(
        entity=entity,
        project=project,
        name=f"reslab {group}",
        sections=[
            ws.Section(
                name="Error by family",
                is_open=True,
                panels=[
                    by_family("train error (%) by family: mean, min-max over seeds", K.TRAIN_ERROR),
                    by_family("test error (%) by family: mean, min-max over seeds", K.TEST_ERROR),
                    scatter(
                        title="final test error (%) vs depth", x=wr.Config(DEPTH), y=wr.SummaryMetric(K.TEST_ERROR)
                    ),
                ],
            ),
            ws.Section(
                name="Gradient flow",
                is_open=True,
                panels=[
                    wr.LinePlot(
                        title="gradient norm by layer",
                        x=K.STEP,
                        metric_regex=re.escape(K.GRAD_NORM_PREFIX) + ".*",
                        log_y=True,
                    ),
                ],
            ),
        ],
        settings=ws.WorkspaceSettings(x_axis=K.STEP),
        runset_settings=ws.RunsetSettings(filters=expr.And(expr.Metric("Group") == group)),
    )


def panel_keys(workspace) -> list[tuple[str, str, str]]:
    """(panel title, section, key) of every key a panel charts: section `history` (a series; `history~` for a
    regular expression over series names), `summary` or `config`. Run attributes are left out."""
    import wandb_workspaces.reports.v2 as wr

    def section(metric, default: str) -> tuple[str, str] | None:
        if isinstance(metric, wr.Config):
            return "config", metric.name
        if isinstance(metric, wr.SummaryMetric):
            return "summary", metric.name
        name = metric.name if isinstance(metric, wr.Metric) else metric
        return None if name in _RUN_ATTRIBUTES else (default, name)

    out = []
    for sec in workspace.sections:
        for panel in sec.panels:
            if isinstance(panel, wr.LinePlot):
                metrics, default = [panel.x, *panel.y], "history"
                if panel.metric_regex:
                    out.append((panel.title, "history~", panel.metric_regex))
            elif isinstance(panel, wr.ScatterPlot):
                metrics, default = [panel.x, panel.y, panel.z], "summary"  # a bare string is a summary key there
            else:
                raise TypeError(f"panel {panel.title!r}: {type(panel).__name__} is not checked; add it here")
            out += [(panel.title, *s) for m in metrics if m is not None and (s := section(m, default))]
    return out


def unlogged(workspace, logged: dict[str, set[str]]) -> list[str]:
    """The panel keys that no run logs, as `panel 'title': section key`; `logged` maps history, summary and
    config to key sets (a real run's, offline_runs.logged_keys, or the contract's). A summary key is the last
    value of a history key unless set on its own."""
    history = logged.get("history", set())
    have = {
        "history": history,
        "summary": logged.get("summary", set()) | history,
        "config": logged.get("config", set()),
    }
    missing = []
    for title, sec, key in panel_keys(workspace):
        ok = any(re.fullmatch(key, k) for k in history) if sec == "history~" else key in have[sec]
        if not ok:
            missing.append(
                f"panel {title!r}: {sec.rstrip('~')} {'series matching ' if sec == 'history~' else ''}{key!r}"
            )
    return missing


def save(workspace, record) -> str:
    """Save the workspace to W&B and return its URL. `record` (a JSON file beside the offline runs) remembers the
    view saved for each group, so that building a study's workspace again updates that view, not a new one."""
    from pathlib import Path

    from reslab import io

    record = Path(record)
    saved = io.read_json(record) if record.is_file() else {}
    key = f"{workspace.entity}/{workspace.project}/{workspace.name}"
    if key in saved:
        workspace._internal_name, workspace._internal_id = saved[key]["name"], saved[key]["id"]
    try:
        workspace.save()
    except Exception:
        if key not in saved:
            raise
        # The view saved earlier is gone (deleted in the app): save this one as new.
        workspace._internal_name, workspace._internal_id = "", ""
        workspace.save()
    saved[key] = {"name": workspace._internal_name, "id": workspace._internal_id, "url": workspace.url}
    io.write_json(record, saved)
    return workspace.url
