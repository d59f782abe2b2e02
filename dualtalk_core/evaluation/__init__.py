"""The paper's evaluation protocol: metrics, DIM baselines, scoring, verdicts, tables, plots."""
