"""report — the report of `bytelm experiment report`, as one package: __main__ (the page, the plots, the
Markdown), findings (each paper claim as tested), seeds (findings from repeated plan entries) and common
(formatting, record access, the shared tests of a comparison). Run as `python3 -m report RESULTS.json OUT_DIR`
with scripts/ on PYTHONPATH; src/experiment/report.cpp does so."""
