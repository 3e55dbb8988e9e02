"""Durable sync state: one checkpoint blob per (tenant, stream, partition), written with ETag conditions."""

from shared.state.checkpoints import (
    Checkpoint,
    CheckpointSaveError,
    CheckpointStore,
    checkpoint_path,
    prune_departed,
)

__all__ = ["Checkpoint", "CheckpointSaveError", "CheckpointStore", "checkpoint_path", "prune_departed"]
