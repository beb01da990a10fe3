"""The benchmark's baseline: a bare Flask app rendering a comparable page (layout, a header
with navigation, and a 50-row table), served by bench/run.py under the same gunicorn settings
as the portal. Its throughput is what each portal page is compared with.
"""

from __future__ import annotations

from flask import Flask, render_template
from jinja2 import DictLoader

LAYOUT = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{% block title %}{% endblock %} · Baseline</title>
  <link rel="stylesheet" href="/static/app.css">
</head>
<body>
  <header class="top"><nav>
    {% for item in nav %}<a href="{{ item.url }}">{{ item.label }}</a>{% endfor %}
  </nav></header>
  <main>{% block content %}{% endblock %}</main>
  <footer class="muted">Tongxin baseline</footer>
</body>
</html>
"""

TABLE = """{% extends "layout.html" %}
{% block title %}Rows{% endblock %}
{% block content %}
<h1>{{ title }}</h1>
<table class="table">
  <thead><tr><th>No.</th><th>Name</th><th>Grid</th><th>Status</th><th>Points</th><th>When</th></tr></thead>
  <tbody>
  {% for row in rows %}
    <tr class="{{ loop.cycle('odd', 'even') }}">
      <td>{{ row.id }}</td><td><a href="/rows/{{ row.id }}">{{ row.name }}</a></td>
      <td>{{ row.grid }}</td>
      <td><span class="badge badge-{{ row.status }}">{{ row.status|title }}</span></td>
      <td>{{ "{:,}".format(row.points) }}</td><td>{{ row.when }}</td>
    </tr>
  {% endfor %}
  </tbody>
</table>
{% endblock %}
"""

app = Flask(__name__)
app.jinja_loader = DictLoader({"layout.html": LAYOUT, "table.html": TABLE})

NAV = [{"url": f"/section/{n}", "label": f"Section {n}"} for n in range(1, 8)]
STATUSES = ("open", "claimed", "done", "closed")


@app.get("/")
def index():
    rows = [
        {
            "id": n,
            "name": f"Volunteer <{n}> & co",
            "grid": f"Grid {n % 15 + 1}",
            "status": STATUSES[n % 4],
            "points": n * 137,
            "when": f"2026-11-{n % 28 + 1:02d} 09:{n % 60:02d}",
        }
        for n in range(1, 51)
    ]
    return render_template("table.html", title="Fifty rows", rows=rows, nav=NAV)
