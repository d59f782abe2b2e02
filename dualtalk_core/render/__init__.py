"""Drawing faces: the project's procedural avatar, FLAME meshes, and conversation videos."""
