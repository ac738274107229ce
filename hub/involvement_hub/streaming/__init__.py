"""Faust adapters: topics, tables and agents around the pure core.

This is the only package that imports faust. Agents here decode, look up state, call the
core and emit; every decision is made in :mod:`involvement_hub.core`.
"""
