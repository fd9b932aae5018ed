"""The history: SQLite/PostgreSQL store, schema and migrations, ingest, maintenance, reports."""
