"""Deployment helpers run from a workstation or an azd hook (never deployed with the function app)."""
