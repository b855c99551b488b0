"""The rule catalogue. See rules/base.py for the contract and rules/catalogue.py for the list."""
