#!/usr/bin/env python3
"""Checks deploy/monitoring beyond what `promtool check/test rules` does.

    check-monitoring.py           check (exit 1 on any problem)
    check-monitoring.py --write   write prometheusrule.yaml from alerts.rules.yaml

1. prometheusrule.yaml (for the Prometheus Operator) holds exactly the groups
   of alerts.rules.yaml (the rule file promtool tests).
2. Every PromQL expression in dashboard.json parses: each becomes a recording
   rule in a temporary rule file (Grafana's $__rate_interval, $__interval and
   $__range become 1m/1m/1h, $namespace a value) that `promtool check rules`
   reads.
3. Every taskledger_* metric that the alerts and the dashboard use is one
   that infra/src/metric.rs defines (a summary's _sum and _count too).
4. prometheus.yml passes `promtool check config` with its
   kubernetes_sd_configs swapped for a static target (Debian's promtool is
   built without Kubernetes discovery), so the rest of it is checked.

Needs PyYAML and promtool (PROMTOOL=path to use another).
"""

import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile

import yaml

HERE = pathlib.Path(__file__).resolve().parent
MON = HERE / "monitoring"
RULES = MON / "alerts.rules.yaml"
OPERATOR_RULES = MON / "prometheusrule.yaml"
DASHBOARD = MON / "dashboard.json"
METRICS_RS = HERE.parent / "infra" / "src" / "metric.rs"
PROMTOOL = os.environ.get("PROMTOOL", "promtool")

GRAFANA_VARS = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "1h",
    "$namespace": "taskledger",
}


def operator_rules():
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "taskledger",
            "namespace": "taskledger",
            "labels": {"app.kubernetes.io/part-of": "taskledger",
                       "release": "kube-prometheus-stack"},
        },
        "spec": {"groups": groups},
    }


class BlockDumper(yaml.SafeDumper):
    """Writes multi-line strings (PromQL) as literal blocks."""


BlockDumper.add_representer(
    str, lambda dumper, value: dumper.represent_scalar(
        "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None))


def write():
    header = ("# Written by deploy/check-monitoring.py --write from alerts.rules.yaml\n"
              "# (the rule file that promtool tests); edit that one, then re-run.\n")
    OPERATOR_RULES.write_text(header + yaml.dump(operator_rules(), Dumper=BlockDumper,
                                                 sort_keys=False, width=100))
    print(f"wrote {OPERATOR_RULES.relative_to(HERE.parent)}")


def dashboard_exprs():
    dash = json.loads(DASHBOARD.read_text())
    found = []

    def walk(panels):
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    found.append((panel.get("title", "?"), target.get("refId", "?"),
                                  target["expr"]))
            walk(panel.get("panels", []))

    walk(dash.get("panels", []))
    return found


def substitute(expr):
    for name, value in sorted(GRAFANA_VARS.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace("${" + name[1:] + "}", value).replace(name, value)
    leftover = re.findall(r"\$\{?\w+", expr)
    if leftover:
        raise ValueError(f"unknown Grafana variable(s) {leftover} in {expr!r}")
    return expr


def defined_metrics():
    text = METRICS_RS.read_text()
    return set(re.findall(r'pub const \w+: &str = "(taskledger_\w+)";', text))


def used_metrics(exprs):
    names = set()
    for expr in exprs:
        names.update(re.findall(r"\btaskledger_[a-z0-9_]+", expr))
    return names


def main(argv):
    if argv == ["--write"]:
        write()
        return 0
    if argv:
        sys.exit(__doc__)
    problems = []

    # 1. the operator's copy of the rules
    on_disk = yaml.safe_load(OPERATOR_RULES.read_text())
    if on_disk != operator_rules():
        problems.append(f"{OPERATOR_RULES.name} differs from {RULES.name}: "
                        "run deploy/check-monitoring.py --write")

    # 2. the dashboard's PromQL
    exprs = dashboard_exprs()
    rules = []
    for n, (title, ref, expr) in enumerate(exprs):
        try:
            rules.append({"record": f"dashboard:panel{n}_{ref.lower()}",
                          "expr": substitute(expr)})
        except ValueError as error:
            problems.append(f"dashboard panel {title!r} {ref}: {error}")
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "dashboard.rules.yaml"
        path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
        run = subprocess.run([PROMTOOL, "check", "rules", str(path)],
                             capture_output=True, text=True)
        if run.returncode != 0:
            problems.append("dashboard PromQL does not parse:\n" + run.stdout + run.stderr)

        # 4. prometheus.yml, Kubernetes discovery swapped for a static target
        config = yaml.safe_load((MON / "prometheus.yml").read_text())
        for job in config.get("scrape_configs", []):
            if job.pop("kubernetes_sd_configs", None) is not None:
                job["static_configs"] = [{"targets": ["127.0.0.1:8080"]}]
        config["rule_files"] = [str(RULES)]
        conf = pathlib.Path(tmp) / "prometheus.yml"
        conf.write_text(yaml.safe_dump(config))
        run = subprocess.run([PROMTOOL, "check", "config", str(conf)],
                             capture_output=True, text=True)
        if run.returncode != 0:
            problems.append("prometheus.yml: promtool check config failed:\n"
                            + run.stdout + run.stderr)

    # 3. metric names
    alert_exprs = [rule["expr"] for group in yaml.safe_load(RULES.read_text())["groups"]
                   for rule in group["rules"]]
    defined = defined_metrics()
    if not defined:
        problems.append(f"no metric names found in {METRICS_RS}")
    for name in sorted(used_metrics(alert_exprs + [e for _, _, e in exprs])):
        base = re.sub(r"_(sum|count)$", "", name)
        if name not in defined and base not in defined:
            problems.append(f"metric {name} is not defined in infra/src/metric.rs")

    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    print(f"{len(exprs)} dashboard exprs, {len(alert_exprs)} alerts, PrometheusRule, "
          f"metric names, prometheus.yml: "
          f"{'ok' if not problems else f'{len(problems)} problems'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
