"""Shared rule text for the language tests."""

from __future__ import annotations

STREAMS = """
stream txns key card_id time ts out_of_order 30s idle 1m
  fields { card_id: string, amount: float, merchant: string, country: string,
           lat: float, lon: float, present: bool, n: int, ts: timestamp }
stream logins key card_id time ts fields { card_id: string, device: string, ts: timestamp }
"""
