"""The baselines of the race: each copies users and every user's messages into JSON Lines, its own way."""
