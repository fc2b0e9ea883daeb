"""W&B, offline by default: the logger, the names runs log under, the series callback, the offline runs on disk, and
the dashboards and workspaces built from them. Reports never read from here."""
