"""The `neural` renderer: a per-actor Head2Head-style generator conditioned on pytorch3d renders of the mesh."""
