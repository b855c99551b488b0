"""The application shell: run orchestration, CLI, scheduler and alerts.

It sits on top of everything else and is the only package that wires connectors, rules, reports
and the kernel together; nothing below imports it.
"""
