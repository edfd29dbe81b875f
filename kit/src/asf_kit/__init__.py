"""Plumbing every ASF Samverkan service needs, written once. No domain rules live here."""
