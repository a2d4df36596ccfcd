"""128 as a service on a server: systemd units, `favad doctor`, health and metrics, backups."""
