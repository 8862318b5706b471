"""Sample lifecycle tracker: thin Python around a PostgreSQL application."""
