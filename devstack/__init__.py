"""Local stack for development and tests: faithful emulators of Entra, Key Vault and Microsoft Graph, plus Azurite.

Never deployed (excluded by .funcignore).
"""
