"""report — the report of `bytelm experiment report`, as one package: __main__ (arguments, sections), page
(Markdown and HTML), records (reading a records directory), findings with findings_mb, findings_blt and
findings_hnet (each paper claim as tested, and BLT's global-model ablation), seeds (findings from repeated
plan entries, one finding per comparison over its seeds), noise (the inconclusive band from seed spreads),
caveats (warm-up, evaluation protocol, entropy-model accounting), summary (the opening table and the distance
to the papers' scale), tables, plots (the gap against the budget among them) and common (formatting, record
access, shared tests).
Run as `python3 -m report RESULTS.json|RECORDS_DIR OUT_DIR` with scripts/ on PYTHONPATH;
src/experiment/report.cpp does so."""
