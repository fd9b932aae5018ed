"""What the user gets: text tables, JSON/CSV/NDJSON, Prometheus, HTML, exports, the terminal."""
