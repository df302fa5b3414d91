"""Mapping writes and use cases: rules.py (sets and rules), profiles.py, apply.py (apply,
undo, the apply job), preview.py, io.py (CSV and kohya import/export), suggestions.py."""
