"""Renders the Helm chart with the real Helm library (helm-python-sdk) for
tests/chart.rs: `chart.py CHART VALUES.yaml NAME NAMESPACE` lints the chart
with those values (`helm lint --strict`: a warning or error fails), checks
them against values.schema.json and prints {"template path": "manifest"} as
JSON; any failure exits 1 with Helm's message."""
import json
import sys

import helm_python as helm


def main():
    chart_dir, values_file, name, namespace = sys.argv[1:5]
    with open(values_file, encoding="utf-8") as f:
        values = helm.values_from_yaml(f.read()) or {}
    report = helm.lint(chart_dir, values, strict=True, namespace=namespace)
    problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
    if problems:
        raise RuntimeError(f"helm lint: {problems}")
    with helm.Chart.load(chart_dir) as chart:
        chart.validate_schema(values)
        rendered = chart.render(values, name=name, namespace=namespace, is_install=True)
    json.dump(rendered, sys.stdout)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # Helm's errors are the message to show
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
