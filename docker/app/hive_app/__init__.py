"""Reference hive API (stands in for the user's app; replaceable via HIVE_APP_MODULE)."""
