"""Reports: Jinja2 templates, rendering and delivery (files, SMTP)."""
