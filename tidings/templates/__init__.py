"""The template language: a bounded Jinja2 sandbox (`sandbox.py`, `bounds.py`,
`operators.py`), its filters (`filters.py`), and checking and rendering (`engine.py`)."""
