"""The rule catalogue. See auditor/rule.py for the contract and rules/catalogue.py for the list."""
