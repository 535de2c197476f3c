"""report — the report of `bytelm experiment report`, as one package: __main__ (arguments, sections), page
(Markdown and HTML), records (reading a records directory), findings with findings_mb and findings_blt (each
paper claim as tested), seeds (findings from repeated plan entries), noise (the inconclusive band from seed
spreads), caveats (warm-up, evaluation protocol, entropy-model accounting), summary (the opening table and
the distance to the papers' scale), tables, plots and common (formatting, record access, shared tests).
Run as `python3 -m report RESULTS.json|RECORDS_DIR OUT_DIR` with scripts/ on PYTHONPATH;
src/experiment/report.cpp does so."""
