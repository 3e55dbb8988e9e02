"""Activity functions: thin adapters from durable JSON inputs to the engine in shared/, and back."""
