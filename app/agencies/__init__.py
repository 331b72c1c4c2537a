"""Agencies that receive routed work: township governments and district bureaus."""
