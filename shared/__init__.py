"""The sync engine: everything a sync activity does, as plain Python usable without the Functions host."""
