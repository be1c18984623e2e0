"""The driver's display: a web page served by the daemon."""
