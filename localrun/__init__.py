"""Run the function app's orchestrations on a laptop: a local Durable host over the real SDK, and the runner CLI."""
