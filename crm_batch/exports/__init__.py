"""KPI results as files and text for other tools and for the terminal (JSON, CSV, tables)."""
