"""Durable sync state: one checkpoint blob per (tenant, stream, partition), written with ETag conditions."""

from shared.state.checkpoints import (
    Checkpoint,
    CheckpointSaveError,
    CheckpointStore,
    any_checkpoint,
    checkpoint_folder,
    checkpoint_path,
    prune_departed,
)

__all__ = ["Checkpoint", "CheckpointSaveError", "CheckpointStore", "any_checkpoint", "checkpoint_folder",
           "checkpoint_path", "prune_departed"]
