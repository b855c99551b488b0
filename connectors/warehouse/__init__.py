"""Warehouse source: CRM tables landed by Fivetran or Airbyte, read through SQLAlchemy."""
